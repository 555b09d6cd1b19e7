"""The technician's tools behind ``scripts/``: flashing the I/O board, provisioning a kiosk,
installing it on a Raspberry Pi. Each prints its steps as it goes and ends with one verdict line."""
