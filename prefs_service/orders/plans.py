"""What customers read for a plan: the label from PREFS_PLANS first, then the
label Stripe sent in the checkout's metadata (`plan_label`), then the code made readable."""

from __future__ import annotations

from flask import current_app

# Stripe's checkout mode stands in for a plan when the session names none.
_MODES = {"payment": "One-off purchase", "subscription": "Subscription", "setup": "Payment details"}


def plan_label(code: str | None, *, stripe_label: object = None) -> str | None:
    if not code:
        return stripe_label.strip() if isinstance(stripe_label, str) and stripe_label.strip() else None
    configured = current_app.config["PREFS"].plans.get(code)
    if configured:
        return str(configured)
    if isinstance(stripe_label, str) and stripe_label.strip():
        return stripe_label.strip()[:200]
    return _MODES.get(code) or code.replace("_", " ").replace("-", " ").strip().capitalize()
