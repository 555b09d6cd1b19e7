"""The shop side: the service a shop runs beside its Voucherify account (``kiosk shop ...``)."""
