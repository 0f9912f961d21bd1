"""ParkCarbon shared kernel: settings, the park model, the metadata database and the time-series store."""
