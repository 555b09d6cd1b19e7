"""The pure core: the flow, code parsing and the voucher model. No I/O, no clock, no threads."""
