"""Screens: where the kiosk shows what the flow decided."""
