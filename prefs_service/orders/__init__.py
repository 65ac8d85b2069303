"""Purchases through Stripe: orders, receipts, commissioning, delivery and its watchdog."""
