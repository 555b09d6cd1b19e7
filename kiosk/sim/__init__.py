"""Simulators for development, demos and tests: stand-in backend and webhook, virtual scanner."""
