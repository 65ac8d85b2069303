"""Privacy-policy versions. The one in force when an event occurred is stamped
on it, so the ledger shows what the person was told when they chose."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import sqlalchemy as sa

from .. import audit
from ..clock import utcnow
from ..errors import Conflict
from ..extensions import db
from .models import PolicyVersion


def policy_version_names() -> set[str]:
    return set(db.session.scalars(sa.select(PolicyVersion.version)))


def current_policy(at: datetime | None = None) -> PolicyVersion | None:
    return db.session.scalar(
        sa.select(PolicyVersion)
        .where(PolicyVersion.effective_at <= (at or utcnow()))
        .order_by(PolicyVersion.effective_at.desc(), PolicyVersion.id.desc())
        .limit(1)
    )


def list_policies() -> list[PolicyVersion]:
    return list(db.session.scalars(sa.select(PolicyVersion).order_by(PolicyVersion.effective_at.desc())))


def publish_policy(
    *, version: str, last_updated: date, url: str | None = None, effective_at: datetime | None = None, actor: str
) -> PolicyVersion:
    if db.session.scalar(sa.select(PolicyVersion.id).where(PolicyVersion.version == version)):
        raise Conflict(f"Policy version {version!r} already exists.", errors={"version": ["already exists"]})
    policy = PolicyVersion(version=version, last_updated=last_updated, url=url, effective_at=effective_at or utcnow())
    db.session.add(policy)
    db.session.flush()
    audit.record("policy.published", actor=actor, target_type="policy_version", target_id=policy.id, details={"version": version})
    return policy


def policy_in_force() -> Callable[[datetime], str | None]:
    """A lookup of the version in force at any moment, from one query (a batch
    stamps thousands of events)."""
    versions = list(
        db.session.execute(
            sa.select(PolicyVersion.effective_at, PolicyVersion.version).order_by(PolicyVersion.effective_at, PolicyVersion.id)
        )
    )

    def at(moment: datetime) -> str | None:
        current = None
        for effective_at, version in versions:
            if effective_at > moment:
                break
            current = version
        return current

    return at
