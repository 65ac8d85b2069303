"""The transparency log over the consent ledger, and the receipts it proves."""
