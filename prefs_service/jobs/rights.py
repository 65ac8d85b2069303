"""Jobs of rights requests: the work itself, and the periodic duties."""

from datetime import timedelta

from ..job_kinds import JobKind
from ..rights import deadlines as request_deadlines
from ..rights import opt_outs, work
from ..rights import service as rights
from .dispatch import every, handler

every(timedelta(hours=1), name="request-deadlines", kind=JobKind.RIGHTS_DEADLINES)
every(timedelta(hours=1), name="request-expiry", kind=JobKind.RIGHTS_EXPIRE)
every(
    timedelta(minutes=1), name="request-exports-purge", kind=JobKind.RIGHTS_PURGE_EXPORTS
)  # a dead export's partial file goes within minutes


def _failed(payload: dict) -> None:
    rights.mark_failed(request_id=payload["request_id"])


def _write_export(payload: dict) -> str | None:
    return work.write_export_file(request_id=payload["request_id"])


@handler(JobKind.RIGHTS_EXPORT, on_failure=_failed, prepare=_write_export)
def export(payload: dict, written: str | None) -> None:
    work.complete_export(request_id=payload["request_id"], written=written)


@handler(JobKind.RIGHTS_ERASE, on_failure=_failed)
def erase(payload: dict) -> None:
    work.run_erasure(request_id=payload["request_id"])


@handler(JobKind.RIGHTS_CORRECT, on_failure=_failed)
def correct(payload: dict) -> None:
    work.run_correction(request_id=payload["request_id"])


@handler(JobKind.RIGHTS_OPT_OUT, on_failure=_failed)
def opt_out(payload: dict) -> None:
    opt_outs.apply(request_id=payload["request_id"])


@handler(JobKind.RIGHTS_DEADLINES)
def deadlines(payload: dict) -> None:
    request_deadlines.alert_deadlines()


@handler(JobKind.RIGHTS_EXPIRE)
def expire(payload: dict) -> None:
    request_deadlines.expire_unverified()


@handler(JobKind.RIGHTS_PURGE_EXPORTS)
def purge_exports(payload: dict) -> None:
    work.purge_expired_exports()
