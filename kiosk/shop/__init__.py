"""The shop side: what a shop that takes part in RE-ZIP runs on its own server (its Voucherify
client, the mapping of its codes onto RE-ZIP vouchers, and the services built on them)."""
