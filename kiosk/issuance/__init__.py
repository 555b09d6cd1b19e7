"""Issuance: turning a packaging code into a voucher, through the RE-ZIP backend."""
