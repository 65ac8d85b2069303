"""Jobs of purchases: Stripe events, provisioning, the delivery watchdog."""

import uuid
from datetime import timedelta

from ..job_kinds import JobKind
from ..orders import service as orders
from ..orders import stripe_events, watchdog
from .dispatch import every, handler

every(timedelta(minutes=1), name="delivery-watchdog", kind=JobKind.ORDER_WATCHDOG)


@handler(JobKind.ORDER_APPLY_STRIPE_EVENT)
def apply_event(payload: dict) -> None:
    stripe_events.apply_event(event_id=payload["event_id"])


@handler(JobKind.ORDER_PROVISION)
def provision(payload: dict) -> None:
    orders.provision(order_id=payload["order_id"])


@handler(JobKind.ORDER_WATCHDOG)
def watch_deliveries(payload: dict) -> None:
    watchdog.watchdog()


@handler(JobKind.ORDER_ESCALATION_WEBHOOK)
def escalation_webhook(payload: dict) -> None:
    watchdog.post_escalation(payload)


@handler(JobKind.ORDER_CLEAR_PROFILE)
def clear_profile(payload: dict) -> None:
    orders.clear_profile(subject_id=uuid.UUID(payload["subject_id"]))
