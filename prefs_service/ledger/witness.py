"""Handing each checkpoint to a witness (PREFS_LEDGER_WITNESS_URL): a durable
job per checkpoint, retried by the job runner, so the sequencer never waits."""

from __future__ import annotations

import json
import urllib.request

from flask import current_app

from .. import outbox
from ..extensions import db
from ..job_kinds import JobKind
from . import checkpoints
from .models import LedgerCheckpoint


def announce(checkpoint: LedgerCheckpoint) -> None:
    if current_app.config["PREFS"].ledger_witness_url:
        outbox.defer(JobKind.LEDGER_WITNESS, {"checkpoint_id": checkpoint.id})


def post_checkpoint(*, checkpoint_id: int) -> None:
    """POST the checkpoint as JSON; a failure (or an answer of 300 or more) retries the job."""
    url = current_app.config["PREFS"].ledger_witness_url
    checkpoint = db.session.get(LedgerCheckpoint, checkpoint_id)
    if not url or checkpoint is None:
        return
    data = json.dumps(checkpoints.as_dict(checkpoint)).encode()
    # The URL is an operator's setting, checked to be http(s) at start-up.
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        if response.status >= 300:
            raise RuntimeError(f"ledger witness answered {response.status}")
