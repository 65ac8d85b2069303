from datetime import timedelta

from ..requests import service as requests
from .dispatch import every, handler

every(timedelta(hours=1), name="request-deadlines", kind="requests.deadlines")
every(timedelta(hours=1), name="request-expiry", kind="requests.expire")
every(timedelta(minutes=1), name="request-exports-purge", kind="requests.purge_exports")  # a dead export's partial file goes within minutes


def _failed(payload: dict) -> None:
    requests.mark_failed(request_id=payload["request_id"])


def _write_export(payload: dict):
    return requests.write_export_file(request_id=payload["request_id"])


@handler("requests.export", on_failure=_failed, prepare=_write_export)
def export(payload: dict, written) -> None:
    requests.complete_export(request_id=payload["request_id"], written=written)


@handler("requests.erase", on_failure=_failed)
def erase(payload: dict) -> None:
    requests.run_erasure(request_id=payload["request_id"])


@handler("requests.correct", on_failure=_failed)
def correct(payload: dict) -> None:
    requests.run_correction(request_id=payload["request_id"])


@handler("requests.deadlines")
def deadlines(payload: dict) -> None:
    requests.alert_deadlines()


@handler("requests.expire")
def expire(payload: dict) -> None:
    requests.expire_unverified()


@handler("requests.purge_exports")
def purge_exports(payload: dict) -> None:
    requests.purge_expired_exports()
