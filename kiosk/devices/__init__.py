"""Adapters to the kiosk's hardware, one folder per device family."""
