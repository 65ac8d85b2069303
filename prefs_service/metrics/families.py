"""Every metric family /metrics serves, in one place.

Imported on first use, never at start-up: prometheus_client chooses between
its in-memory values and multiprocess files when it is imported, so `prefs
serve` sets PROMETHEUS_MULTIPROC_DIR before anything imports this module.

Counted in the process (summed across gunicorn workers in multiprocess mode):
requests with their latency, consent checks and ledger events. Read from the
database at scrape time by metrics.database (right however many processes
serve): jobs, queue and notice ages, overdue requests, open escalations.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, disable_created_metrics

from ..consent.rules import REASONS

disable_created_metrics()  # a `_created` series beside every counter: noise for a scraper
# Not registered anywhere: metrics/__init__.py picks the registry per mode.
# One family for requests and their latency: its _count is the requests
# answered, so a request costs one observation, not also a counter's increment.
HTTP_REQUESTS = Histogram(
    "prefs_http_request_duration_seconds",
    "HTTP requests answered and the app's time on each, by Flask endpoint (never the raw path) and status; _count counts them.",
    ["endpoint", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,
)
CHECKS = Counter(
    "prefs_consent_checks",
    "Consent checks answered (single and bulk, one per recipient), by the answer's reason.",
    ["reason"],
    registry=None,
)
LEDGER_EVENTS = Counter(
    "prefs_ledger_events",
    "Consent events committed to the ledger by this service's processes, by source.",
    ["source"],
    registry=None,
)
IN_PROCESS = (HTTP_REQUESTS, CHECKS, LEDGER_EVENTS)
for _reason in REASONS:  # every reason from the start, at 0: a rate needs the series before the first answer
    CHECKS.labels(_reason)

# Read from the database at scrape time: (name, help).
JOBS = ("prefs_jobs", "Jobs in the jobs table, by kind and state (done jobs are pruned after a while).")
OLDEST_QUEUED_JOB_AGE = (
    "prefs_oldest_queued_job_age_seconds",
    "How long the oldest job that is due has waited to run (0 when none waits).",
)
OLDEST_UNSENT_NOTICE_AGE = (
    "prefs_oldest_unsent_notice_age_seconds",
    "Age of the oldest notice (mail) not yet sent (0 when none is pending).",
)
OVERDUE_REQUESTS = ("prefs_rights_requests_overdue", "Open rights requests past their due date.")
OPEN_ESCALATIONS = ("prefs_delivery_escalations_open", "Delivery escalations not yet resolved, by kind.")
REGISTER_LIST_AGE = (
    "prefs_register_list_age_seconds",
    "Age of each imported national register's current full list, from the start of its list date (UTC), by register.",
)
REGISTER_LIST_DATE = (
    "prefs_register_list_date_timestamp_seconds",
    "The list date of each imported national register's current full list, as the Unix time of its start (00:00 UTC), by register.",
)
REGISTER_LIST_AGE_DAYS = ("prefs_register_list_age_days", "The same age in whole days, as the staleness rule counts it, by register.")
REGISTER_ENTRIES = ("prefs_register_entries", "Entries of each imported register's current list, as its imports counted them, by register.")
REGISTER_STALE = ("prefs_register_stale", "1 when a register's current list is past its rule (checks answer register_stale), by register.")
