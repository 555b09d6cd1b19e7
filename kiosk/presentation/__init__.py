"""Presentation: one view model of what the customer sees, rendered to the screen and to paper."""
