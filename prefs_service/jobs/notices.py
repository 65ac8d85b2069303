"""Jobs of notices: delivering each message we owe someone."""

from ..job_kinds import JobKind
from ..notices import service as notices
from .dispatch import handler


@handler(JobKind.NOTICE_DELIVER)
def deliver_notice(payload: dict) -> None:
    notices.deliver(notice_id=payload["notice_id"])
