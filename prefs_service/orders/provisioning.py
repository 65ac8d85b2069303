"""Provisioners create the customer's system. PREFS_PROVISIONER names the class
(`package.module:Class`); it is built once per app with the settings.

A provisioner must be idempotent: provisioning the same order twice returns the
same system (a job may run again after a crash).
"""

from __future__ import annotations

import importlib
from typing import Protocol

import sqlalchemy as sa
from argon2 import PasswordHasher
from flask import current_app

from ..config import Settings
from ..extensions import db
from .models import ProvisionedSystem


class Provisioner(Protocol):
    def provision(self, *, order_id: int, system_name: str, username: str) -> str:
        """Create (or find) the system; returns its URL."""

    def set_password(self, *, order_id: int, password: str) -> None:
        """Give the system's user this password. It is never stored in plain text."""


class LocalProvisioner:
    """Records the system in our own database, with its URL from
    PREFS_SYSTEM_URL_TEMPLATE and the password as an argon2 hash."""

    def __init__(self, settings: Settings):
        self.url_template = settings.system_url_template
        self.hasher = PasswordHasher()

    def provision(self, *, order_id: int, system_name: str, username: str) -> str:
        existing = db.session.scalar(sa.select(ProvisionedSystem).where(ProvisionedSystem.order_id == order_id))
        if existing is not None:
            return existing.url
        system = ProvisionedSystem(
            order_id=order_id, system_name=system_name, username=username, url=self.url_template.format(system=system_name)
        )
        db.session.add(system)
        db.session.flush()
        return system.url

    def set_password(self, *, order_id: int, password: str) -> None:
        system = db.session.scalar(sa.select(ProvisionedSystem).where(ProvisionedSystem.order_id == order_id))
        if system is None:
            raise LookupError(f"no system provisioned for order {order_id}")
        system.password_hash = self.hasher.hash(password)


def provisioner() -> Provisioner:
    cached = current_app.extensions.get("prefs.provisioner")
    if cached is None:
        settings = current_app.config["PREFS"]
        module_name, _, class_name = settings.provisioner.replace(":", ".").rpartition(".")
        cached = getattr(importlib.import_module(module_name), class_name)(settings)
        current_app.extensions["prefs.provisioner"] = cached
    chosen: Provisioner = cached
    return chosen
