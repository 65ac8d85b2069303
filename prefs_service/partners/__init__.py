"""Partners and resellers, and the log of what we disclosed to them."""
