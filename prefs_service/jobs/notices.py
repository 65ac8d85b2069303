from ..notices import service as notices
from .dispatch import handler


@handler(notices.DELIVER_JOB)
def deliver_notice(payload: dict) -> None:
    notices.deliver(notice_id=payload["notice_id"])
