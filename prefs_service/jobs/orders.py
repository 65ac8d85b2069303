import uuid
from datetime import timedelta

from ..orders import service as orders
from .dispatch import every, handler

every(timedelta(minutes=1), name="delivery-watchdog", kind="orders.watchdog")


@handler(orders.APPLY_JOB)
def apply_event(payload: dict) -> None:
    orders.apply_event(event_id=payload["event_id"])


@handler(orders.PROVISION_JOB)
def provision(payload: dict) -> None:
    orders.provision(order_id=payload["order_id"])


@handler("orders.watchdog")
def watchdog(payload: dict) -> None:
    orders.watchdog()


@handler(orders.ESCALATION_WEBHOOK_JOB)
def escalation_webhook(payload: dict) -> None:
    orders.post_escalation(payload)


@handler("orders.clear_profile")
def clear_profile(payload: dict) -> None:
    orders.clear_profile(subject_id=uuid.UUID(payload["subject_id"]))
