"""Scanners: every source turns what a reader sends into lines of text for the flow."""
