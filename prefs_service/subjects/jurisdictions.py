"""Whose law a person falls under. It sets the clocks of their rights requests
(rights/) and what a Global Privacy Control signal means for them."""

from __future__ import annotations

from flask import current_app

GB = "GB"  # UK GDPR and PECR
EU = "EU"  # GDPR
US_CA = "US-CA"  # CCPA as amended by the CPRA
OTHER = "other"
JURISDICTIONS = (GB, EU, US_CA, OTHER)
LABELS = {GB: "United Kingdom (UK GDPR)", EU: "European Union (GDPR)", US_CA: "California (CCPA/CPRA)", OTHER: "Elsewhere"}


def of(subject: object | None) -> str:
    """The person's jurisdiction, else PREFS_DEFAULT_JURISDICTION."""
    stored: str | None = getattr(subject, "jurisdiction", None)
    default: str = current_app.config["PREFS"].default_jurisdiction
    return stored or default
