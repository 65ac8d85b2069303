"""The consent ledger and the rules that answer "may we contact this person?".

- `rules`: pure functions: which event wins, what a check decides;
- `events`: an event's fields, checked before anything is recorded;
- `policies`: privacy-policy versions, stamped on every event;
- `ledger`: appending events and keeping the current state with them;
- `queries`: every statement, and how each runs;
- `checks`: single and bulk checks, and the current-state view;
- `feed`: a person's history and the change feed;
- `self_service`: what a person does through a signed link;
- `suppressions`: identifiers never to be contacted.

The functions other packages call are named here.
"""

from ..subjects.refs import CHECK_KEYS
from .checks import check, check_many, current, register_fields
from .events import (
    API_SOURCES,
    BATCH_LIMIT,
    NOTE_LIMIT,
    EventInput,
    Evidence,
    build_event,
    evidence_from,
    require_channel_purpose,
    validate_batch,
)
from .feed import changes, history
from .ledger import record, record_batch
from .policies import current_policy, list_policies, publish_policy
from .rules import REASONS, CheckResult
from .self_service import (
    come_back,
    erased_address,
    honour_gpc,
    preference_view,
    request_preferences_link,
    save_preferences,
    stop_all_marketing,
    unsubscribe,
)
from .suppressions import REASONS as SUPPRESSION_REASONS
from .suppressions import suppress

__all__ = [
    "API_SOURCES",
    "BATCH_LIMIT",
    "CHECK_KEYS",
    "NOTE_LIMIT",
    "REASONS",
    "SUPPRESSION_REASONS",
    "CheckResult",
    "EventInput",
    "Evidence",
    "build_event",
    "changes",
    "check",
    "check_many",
    "come_back",
    "current",
    "current_policy",
    "erased_address",
    "evidence_from",
    "history",
    "honour_gpc",
    "list_policies",
    "preference_view",
    "publish_policy",
    "record",
    "record_batch",
    "register_fields",
    "request_preferences_link",
    "require_channel_purpose",
    "save_preferences",
    "stop_all_marketing",
    "suppress",
    "unsubscribe",
    "validate_batch",
]
