"""Sharing with partners and resellers. No identifier of its own: consent here
is about the person, whichever identifier found them."""

NAME = "partner"
LABEL = "Partners and resellers"
IDENTIFIER_KIND = None
PURPOSES = (
    ("share_for_fulfilment", "Share my details with a partner when needed to fulfil my order", False),
    ("share_for_marketing", "Share my details with partners for their marketing", True),
)
