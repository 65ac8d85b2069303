"""Every kind of durable job. A domain defers one with outbox.defer(kind, …);
jobs/ registers exactly one handler per kind (a test holds the two equal).

The values are stored in job rows, so they never change: the rights-request
jobs keep the `requests.` prefix of the package's old name.
"""

from __future__ import annotations

from enum import StrEnum


class JobKind(StrEnum):
    NOTICE_DELIVER = "notices.deliver"
    ORDER_APPLY_STRIPE_EVENT = "orders.apply_event"
    ORDER_PROVISION = "orders.provision"
    ORDER_WATCHDOG = "orders.watchdog"
    ORDER_ESCALATION_WEBHOOK = "orders.escalation_webhook"
    ORDER_CLEAR_PROFILE = "orders.clear_profile"
    RIGHTS_EXPORT = "requests.export"
    RIGHTS_ERASE = "requests.erase"
    RIGHTS_CORRECT = "requests.correct"
    RIGHTS_OPT_OUT = "requests.opt_out"
    RIGHTS_DEADLINES = "requests.deadlines"
    RIGHTS_EXPIRE = "requests.expire"
    RIGHTS_PURGE_EXPORTS = "requests.purge_exports"
    JOBS_PURGE_FINISHED = "jobs.purge_finished"
    LEDGER_WITNESS = "ledger.witness"
