from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..db.types import Base

SCOPES = (
    "consent:read",
    "consent:write",
    "subjects:read",
    "subjects:write",
    "requests:read",
    "requests:write",
    "admin",
)

# A reviewer handles rights requests; an admin also manages staff accounts and
# API keys, and reads the audit log.
REVIEWER, ADMIN = "reviewer", "admin"
ROLES = (REVIEWER, ADMIN)


class ApiKey(Base):
    """An API key for another system. Only a SHA-256 of the secret part is kept:
    keys are long random strings, so a slow password hash would add nothing."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    scopes: Mapped[list[str]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class StaffUser(Base):
    """A person who works the request queue. Passwords are argon2 hashes."""

    __tablename__ = "staff_users"
    __table_args__ = (sa.CheckConstraint(f"role IN {ROLES}", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(16), default=REVIEWER, server_default=REVIEWER)
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    # Bumped on logout and password change so old session cookies stop working.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
