"""Jobs of the transparency log: the sequencer loop and the witness."""

from __future__ import annotations

import logging
import threading

from flask import Flask

from ..job_kinds import JobKind
from ..ledger import sequencer, witness
from .dispatch import describe_error, handler

log = logging.getLogger(__name__)


@handler(JobKind.LEDGER_WITNESS)
def post_to_witness(payload: dict) -> None:
    witness.post_checkpoint(checkpoint_id=payload["checkpoint_id"])


def sequence_forever(app: Flask, stop: threading.Event) -> None:
    """Sequence every PREFS_LEDGER_SEQUENCE_INTERVAL_SECONDS until `stop`; a
    full batch goes round again at once. Runs beside the sweeper in every
    worker; the sequencer's lock keeps it to one at a time."""
    interval = app.config["PREFS"].ledger_sequence_interval_seconds
    while not stop.wait(interval):
        try:
            with app.app_context():
                while sequencer.sequence_once() >= sequencer.BATCH and not stop.is_set():
                    pass  # a full batch: more may wait
        except Exception as exc:  # noqa: BLE001 - keep going through a database outage
            log.warning("ledger sequencing failed: %s", describe_error(exc))
