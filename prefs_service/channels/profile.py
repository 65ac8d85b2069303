"""The customer profile: not a way to contact anyone, but a use of their data
that needs their say. Opt-in, like marketing."""

NAME = "profile"
LABEL = "Your customer profile"
IDENTIFIER_KIND = None
PURPOSES = (("profile_enrichment", "Keep my billing details and order history for my next purchase", False),)
# Allowed only with a grant, though it is not marketing.
NEEDS_CONSENT = ("profile_enrichment",)
