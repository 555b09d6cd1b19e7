"""What an operator watches a fleet of kiosks through: Prometheus metrics, systemd's notify and
watchdog protocol, the journal, health reports to the backend and a technician's self-checks.

Every part reads the kiosk through one ``KioskSnapshot`` (``kiosk.fleet.snapshot``), so the
metrics, the ``STATUS=`` line, the health report and ``kiosk doctor`` never disagree."""
