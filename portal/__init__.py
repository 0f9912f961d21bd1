"""The ParkCarbon portal: Dash pages, the command line and (later) the scheduler service."""
