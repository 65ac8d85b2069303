"""The customer profile: not a way to contact anyone, but a use of their data
that needs their say. Opt-in, like marketing."""

NAME = "profile"
LABEL = "Your customer profile"
IDENTIFIER_KIND = None
PURPOSES = (
    ("profile_enrichment", "Keep my billing details and order history for my next purchase", False),
    ("use_sensitive_data", "Use sensitive personal information about me beyond what my orders need", False),
)
# Allowed only with a grant, though it is not marketing ("limit the use of my
# sensitive personal information" withdraws use_sensitive_data).
NEEDS_CONSENT = ("profile_enrichment", "use_sensitive_data")
