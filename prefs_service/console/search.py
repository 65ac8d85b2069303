"""Finding a person or a request by any key staff may be given: an email
address, a phone or fax number, a request or order reference, or the CRM's
external_ref. Identifiers are looked up by their keyed hash only; the term is
never logged nor stored."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from .. import channels
from ..errors import Invalid
from ..extensions import db
from ..orders.models import Order
from ..rights import queue as request_queue
from ..subjects import refs
from ..subjects.identifiers import EXTERNAL_REF
from ..subjects.models import Subject
from ..subjects.refs import SubjectRef

ANY = "any"
# What a search may look for; ANY tries every kind the term could be.
KINDS = {
    ANY: "Anything",
    "email": "Email address",
    "phone": "Phone number",
    "fax": "Fax number",
    "request": "Request reference",
    "order": "Order reference",
    EXTERNAL_REF: "CRM reference",
}
TERM_LIMIT = 500


@dataclass(frozen=True)
class Hit:
    """One thing the term names: a person (`subject_id`), a request
    (`request_id`), or a key of a person erased at their request (neither)."""

    kind: str
    subject_id: uuid.UUID | None = None
    request_id: int | None = None
    erased: bool = False
    note: str = ""

    @property
    def label(self) -> str:
        return KINDS[self.kind]


def search(*, term: str, kind: str = ANY) -> list[Hit]:
    """Every distinct match of `term` as `kind` (or as any kind)."""
    term = (term or "").strip()
    if kind not in KINDS:
        raise Invalid("Unknown kind of search.", errors={"kind": [f"must be one of: {', '.join(KINDS)}"]})
    if not term or len(term) > TERM_LIMIT:
        raise Invalid("Type what to search for.", errors={"term": [f"1 to {TERM_LIMIT} characters"]})
    kinds = [k for k in KINDS if k != ANY] if kind == ANY else [kind]
    hits: list[Hit] = []
    for each in kinds:
        try:
            found = _search_one(each, term)
        except channels.InvalidIdentifier as exc:
            if kind != ANY:  # asked for this kind only: say why the term cannot be one
                raise Invalid(f"That is not a valid {KINDS[each].lower()}.", errors={"term": [str(exc)]}) from None
            continue
        hits += [hit for hit in found if hit not in hits]
    return hits


def _search_one(kind: str, term: str) -> list[Hit]:
    if kind == "request":
        request = request_queue.by_reference(term)
        return [Hit(kind, subject_id=request.subject_id, request_id=request.id, erased=_erased(request.subject_id))] if request else []
    if kind == "order":
        order = db.session.scalar(sa.select(Order).where(Order.reference == term.upper()))
        if order is None:
            return []
        return [Hit(kind, subject_id=order.subject_id, note=f"order {order.reference}", erased=_erased(order.subject_id))]
    ref = SubjectRef(kind, term) if kind == EXTERNAL_REF else SubjectRef(kind, channels.normalize(kind, term))
    subject = refs.find(ref)
    if subject is not None:
        return [Hit(kind, subject_id=subject.id, erased=subject.erased_at is not None)]
    if refs.erased([ref]):
        return [Hit(kind, erased=True)]
    return []


def _erased(subject_id: object) -> bool:
    subject = db.session.get(Subject, subject_id) if subject_id is not None else None
    return subject is not None and subject.erased_at is not None
