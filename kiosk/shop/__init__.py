"""The shop side: what a shop that takes part in RE-ZIP runs on its own server beside its Voucherify
account (``kiosk shop ...``): its Voucherify client, the mapping of its codes onto RE-ZIP vouchers,
its configuration, and the services built on them."""
