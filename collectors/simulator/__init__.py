"""Simulated field devices for the demo and the tests: they speak the real protocols (Modbus TCP, MQTT), so the
collectors are exercised exactly as in a park.  One module per kind of device."""
