"""Settings from PREFS_* environment variables, checked once at start-up.

A bad value stops start-up with a `ConfigError` naming the variable, so an operator
never finds out about a typo from a 500 at three in the morning.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from .private_files import create_private_file, private_folder

ENVIRONMENTS = ("development", "test", "production")
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")
MAIL_SCHEMES = ("file", "smtp", "smtp+starttls", "smtps")
MIN_KEY_LENGTH = 32
POLICY_VERSION_LENGTH = 40  # consent.models.PolicyVersion.version


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    var_dir: Path = Path("var")  # load_settings: PREFS_VAR_DIR, else default_var_dir()
    database_url: str = ""
    broker_url: str = ""
    secret_keys: tuple[str, ...] = ()
    identifier_key: str = ""
    mail_url: str = ""
    mail_from_transactional: str = "Privacy Team <privacy@localhost.localdomain>"
    mail_from_marketing: str = "News <news@localhost.localdomain>"
    base_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    worker_threads: int = 4
    sweep_interval_seconds: float = 15.0
    job_resend_after_seconds: float = 60.0
    job_lease_seconds: float = 300.0
    api_key_cache_seconds: float = 10.0
    max_body_bytes: int = 16 * 1024 * 1024
    max_register_upload_bytes: int = 1024 * 1024 * 1024  # a full TPS file is about 240 MB
    ratelimit_storage_url: str = "memory://"
    export_dir: Path = Path("var/exports")
    stripe_webhook_secret: str = ""
    provisioner: str = "prefs_service.orders.provisioning:LocalProvisioner"
    system_url_template: str = "https://{system}.crm.example"
    delivery_sla_seconds: float = 600.0
    escalation_emails: tuple[str, ...] = ()
    escalation_webhook_url: str = ""
    escalation_repeat_seconds: float = 900.0
    trusted_proxies: int = 0
    initial_policy_version: str = "initial"
    # Who the public pages and every mail say we are, and where people write for help.
    org_name: str = "Example Organisation"
    support_email: str = "support@localhost.localdomain"
    privacy_policy_url: str = ""
    # The controller's postal address and phone: the Kantara consent receipt requires both (ledger/receipt_formats.py).
    org_postal_address: str = ""
    org_phone: str = ""
    # Plan code -> the label customers read (receipts, pages); Stripe metadata fills gaps.
    plans: Mapping[str, str] = field(default_factory=dict)
    # Whose law a person falls under when nothing says otherwise (subjects/jurisdictions.py).
    default_jurisdiction: str = "GB"
    # What a check answers when a register's list is past its rule: "refuse" or "warn" (registers/screening.py).
    register_stale: str = "refuse"
    # The transparency log (ledger/): base64 Ed25519 seed, sequencer interval, witness.
    ledger_signing_key: str = ""
    ledger_sequence_interval_seconds: float = 0.5
    ledger_witness_url: str = ""
    # Everything a test or an embedding program wants to pass straight to Flask.
    flask_overrides: dict = field(default_factory=dict)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def public_face(self) -> dict[str, str]:
        """Who we are and where to write: given to every page and every mail."""
        return {"org_name": self.org_name, "support_email": self.support_email, "privacy_policy_url": self.privacy_policy_url}

    @property
    def mail_folder(self) -> Path | None:
        parts = urlsplit(self.mail_url)
        return Path(parts.path) if parts.scheme == "file" else None


def _text(environ, name, default=""):
    return environ.get(name, default).strip()


def _number(environ, name, default, cast, minimum):
    raw = _text(environ, name)
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _kept_secret(path: Path) -> str:
    """Read a development secret from var/, creating it (mode 0600) on first use."""
    private_folder(path.parent)  # var/ also holds the database and the mail: 0700, even if made before
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(48)
    with os.fdopen(create_private_file(path), "w") as handle:
        handle.write(value + "\n")
    return value


def default_var_dir(environ: Mapping[str, str]) -> Path:
    """Where development data lives when PREFS_VAR_DIR is unset, the same from any
    working directory: var/ in the source checkout the package is installed from
    (editable), else the user's data folder ($XDG_DATA_HOME/prefs_service)."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "migrations").is_dir():
        return checkout / "var"
    data_home = _text(environ, "XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "prefs_service"


def served_base_url(host: str, port: int, environ: Mapping[str, str] | None = None) -> str | None:
    """The base URL for links when `prefs serve` binds host:port, or None when
    PREFS_BASE_URL names it. A wildcard bind is reached as 127.0.0.1 here."""
    environ = os.environ if environ is None else environ
    if _text(environ, "PREFS_BASE_URL"):
        return None
    reachable = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)  # noqa: S104  # reading a bind address, not binding
    if ":" in reachable and not reachable.startswith("["):
        reachable = f"[{reachable}]"  # an IPv6 address in a URL
    return f"http://{reachable}:{port}"


def _initial_policy_version(environ) -> str:
    value = _text(environ, "PREFS_INITIAL_POLICY_VERSION") or Settings.initial_policy_version
    if len(value) > POLICY_VERSION_LENGTH or any(not ch.isprintable() for ch in value):
        raise ConfigError(f"PREFS_INITIAL_POLICY_VERSION must be at most {POLICY_VERSION_LENGTH} printable characters, got {value!r}")
    return value


def _check_address(name: str, value: str) -> str:
    _, address = parseaddr(value)
    if "@" not in address or " " in address:
        raise ConfigError(f"{name} must be an email address such as 'Privacy <privacy@example.com>', got {value!r}")
    return value


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    scheme = urlsplit(value).scheme
    if scheme not in schemes:
        raise ConfigError(f"{name} must start with one of {', '.join(s + '://' for s in schemes)}; got scheme {scheme or 'none'!r}")
    return value


def _dotted(environ, name: str, default: str) -> str:
    value = _text(environ, name) or default
    if not re.fullmatch(r"[A-Za-z_][\w.]*[:.][A-Za-z_]\w*", value):
        raise ConfigError(f"{name} must be a dotted path such as package.module:ClassName, got {value!r}")
    return value


def _system_url_template(environ) -> str:
    value = _text(environ, "PREFS_SYSTEM_URL_TEMPLATE") or Settings.system_url_template
    if "{system}" not in value or not value.startswith(("http://", "https://")):
        raise ConfigError("PREFS_SYSTEM_URL_TEMPLATE must be an http(s) URL containing {system}, e.g. https://{system}.crm.example")
    return value


def _addresses(environ, name: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in _text(environ, name).split(",") if v.strip())
    for value in values:
        if "@" not in value or " " in value:
            raise ConfigError(f"{name} must be comma-separated email addresses, got {value!r}")
    return values


def _support_email(environ, production: bool) -> str:
    value = _text(environ, "PREFS_SUPPORT_EMAIL")
    if not value:
        if production:
            raise ConfigError("PREFS_SUPPORT_EMAIL is required when PREFS_ENV=production: every page and mail tells people to write there")
        return Settings.support_email
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise ConfigError(f"PREFS_SUPPORT_EMAIL must be a plain email address such as support@example.com, got {value!r}") from None


def _org_name(environ, production: bool) -> str:
    value = _text(environ, "PREFS_ORG_NAME")
    if not value and production:
        raise ConfigError("PREFS_ORG_NAME is required when PREFS_ENV=production: every page and mail names the organisation")
    if len(value) > 200:
        raise ConfigError("PREFS_ORG_NAME must be at most 200 characters")
    return value or Settings.org_name


def _privacy_policy_url(environ) -> str:
    value = _text(environ, "PREFS_PRIVACY_POLICY_URL")
    if value and not (urlsplit(value).scheme in ("http", "https") and urlsplit(value).hostname):
        raise ConfigError(f"PREFS_PRIVACY_POLICY_URL must be an http(s) URL such as https://example.com/privacy, got {value!r}")
    return value


def _org_contact(environ, name: str, limit: int) -> str:
    """PREFS_ORG_POSTAL_ADDRESS / PREFS_ORG_PHONE: one line of free text for consent receipts."""
    value = _text(environ, name)
    if len(value) > limit or any(ch in value for ch in "\r\n\x00"):
        raise ConfigError(f"{name} must be one line of at most {limit} characters")
    return value


def _plans(environ) -> dict[str, str]:
    """PREFS_PLANS as a JSON object ({"pro": "Pro, yearly"}) or `code=Label,code=Label`."""
    raw = _text(environ, "PREFS_PLANS")
    if not raw:
        return {}
    problem = (
        "PREFS_PLANS must be a JSON object of plan code to label, or code=Label pairs separated by commas, e.g. pro=Pro plan,team=Team plan"
    )
    if raw.startswith("{"):
        try:
            plans = json.loads(raw)
        except ValueError:
            raise ConfigError(problem + " (the JSON does not parse)") from None
        if not isinstance(plans, dict) or not all(isinstance(v, str) for v in plans.values()):
            raise ConfigError(problem)
    else:
        pairs = [item.partition("=") for item in raw.split(",") if item.strip()]
        if not all(sep for _, sep, _ in pairs):
            raise ConfigError(problem)
        plans = {code: label for code, _, label in pairs}
    plans = {str(code).strip(): label.strip() for code, label in plans.items()}
    if not all(plans) or not all(plans.values()):
        raise ConfigError(problem + " (a code or a label is empty)")
    return plans


def _default_jurisdiction(environ) -> str:
    from .subjects.jurisdictions import JURISDICTIONS

    value = _text(environ, "PREFS_DEFAULT_JURISDICTION") or Settings.default_jurisdiction
    if value not in JURISDICTIONS:
        raise ConfigError(f"PREFS_DEFAULT_JURISDICTION must be one of {', '.join(JURISDICTIONS)}, got {value!r}")
    return value


def _register_stale(environ) -> str:
    value = _text(environ, "PREFS_REGISTER_STALE") or Settings.register_stale
    if value not in ("refuse", "warn"):
        raise ConfigError(f"PREFS_REGISTER_STALE must be refuse or warn, got {value!r}")
    return value


def _ledger_signing_key(environ, production: bool, var_dir: Path) -> str:
    """PREFS_LEDGER_SIGNING_KEY: standard base64 of a raw 32-byte Ed25519 seed
    (`openssl rand -base64 32`); development keeps one in var/ledger_signing_key."""
    value = _text(environ, "PREFS_LEDGER_SIGNING_KEY")
    if not value:
        if production:
            raise ConfigError("PREFS_LEDGER_SIGNING_KEY is required when PREFS_ENV=production: base64 of a 32-byte Ed25519 seed")
        path = var_dir / "ledger_signing_key"
        private_folder(path.parent)
        if not path.exists():
            with os.fdopen(create_private_file(path), "w") as handle:
                handle.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        value = path.read_text().strip()
    try:
        seed = base64.b64decode(value, validate=True)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise ConfigError("PREFS_LEDGER_SIGNING_KEY must be standard base64 of a raw 32-byte Ed25519 seed (openssl rand -base64 32)")
    return value


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from the environment; keyword overrides win (used by tests)."""
    environ = os.environ if environ is None else environ

    env = _text(environ, "PREFS_ENV", "development")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"PREFS_ENV must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")
    env = overrides.pop("env", env)
    var_dir = Path(overrides.pop("var_dir", None) or _text(environ, "PREFS_VAR_DIR") or default_var_dir(environ)).absolute()
    production = env == "production"

    database_url = overrides.pop("database_url", None) or _text(environ, "PREFS_DATABASE_URL") or f"sqlite:///{var_dir / 'prefs.db'}"
    if "://" not in database_url:
        raise ConfigError(
            "PREFS_DATABASE_URL must be a URL such as sqlite:///var/prefs.db or postgresql+psycopg://host/db, got a value without '://'"
        )
    if database_url.startswith(("postgres://", "postgresql://")):
        # psycopg 3 is the driver we ship; plain postgres URLs mean it.
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]

    broker_url = overrides.pop("broker_url", None)
    if broker_url is None:
        broker_url = _text(environ, "PREFS_BROKER_URL")
    if broker_url:
        _check_url("PREFS_BROKER_URL", broker_url, BROKER_SCHEMES)

    secret_keys = overrides.pop("secret_keys", None)
    if secret_keys is None:
        secret_keys = tuple(k.strip() for k in _text(environ, "PREFS_SECRET_KEYS").split(",") if k.strip())
        if not secret_keys:
            if production:
                raise ConfigError("PREFS_SECRET_KEYS is required when PREFS_ENV=production (comma-separated, newest first)")
            secret_keys = (_kept_secret(var_dir / "secret_key"),)
    for key in secret_keys:
        if len(key) < MIN_KEY_LENGTH:
            raise ConfigError(f"PREFS_SECRET_KEYS: every key must be at least {MIN_KEY_LENGTH} characters")

    identifier_key = overrides.pop("identifier_key", None) or _text(environ, "PREFS_IDENTIFIER_KEY")
    if not identifier_key:
        if production:
            raise ConfigError("PREFS_IDENTIFIER_KEY is required when PREFS_ENV=production; it must never change once data exists")
        identifier_key = _kept_secret(var_dir / "identifier_key")
    if len(identifier_key) < MIN_KEY_LENGTH:
        raise ConfigError(f"PREFS_IDENTIFIER_KEY must be at least {MIN_KEY_LENGTH} characters")

    mail_url = overrides.pop("mail_url", None) or _text(environ, "PREFS_MAIL_URL") or f"file://{var_dir / 'outbox'}"
    _check_url("PREFS_MAIL_URL", mail_url, MAIL_SCHEMES)
    if urlsplit(mail_url).scheme != "file" and not urlsplit(mail_url).hostname:
        raise ConfigError("PREFS_MAIL_URL must name a host, e.g. smtp://mail.example.com:25")

    base_url = (overrides.pop("base_url", None) or _text(environ, "PREFS_BASE_URL") or Settings.base_url).rstrip("/")
    _check_url("PREFS_BASE_URL", base_url, ("http", "https"))
    if production and not base_url.startswith("https://"):
        raise ConfigError("PREFS_BASE_URL must be https:// when PREFS_ENV=production: links in mail carry signed tokens")

    log_level = _text(environ, "PREFS_LOG_LEVEL", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"PREFS_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")

    settings = Settings(
        env=env,
        var_dir=var_dir,
        database_url=database_url,
        broker_url=broker_url,
        secret_keys=tuple(secret_keys),
        identifier_key=identifier_key,
        mail_url=mail_url,
        mail_from_transactional=_check_address(
            "PREFS_MAIL_FROM_TRANSACTIONAL",
            _text(environ, "PREFS_MAIL_FROM_TRANSACTIONAL") or Settings.mail_from_transactional,
        ),
        mail_from_marketing=_check_address(
            "PREFS_MAIL_FROM_MARKETING", _text(environ, "PREFS_MAIL_FROM_MARKETING") or Settings.mail_from_marketing
        ),
        base_url=base_url,
        log_level=log_level,
        worker_threads=_number(environ, "PREFS_WORKER_THREADS", Settings.worker_threads, int, 1),
        sweep_interval_seconds=_number(environ, "PREFS_SWEEP_INTERVAL_SECONDS", Settings.sweep_interval_seconds, float, 0.05),
        job_resend_after_seconds=_number(environ, "PREFS_JOB_RESEND_AFTER_SECONDS", Settings.job_resend_after_seconds, float, 0.05),
        job_lease_seconds=_number(environ, "PREFS_JOB_LEASE_SECONDS", Settings.job_lease_seconds, float, 0.5),
        api_key_cache_seconds=_number(environ, "PREFS_API_KEY_CACHE_SECONDS", Settings.api_key_cache_seconds, float, 0),
        max_body_bytes=_number(environ, "PREFS_MAX_BODY_BYTES", Settings.max_body_bytes, int, 1024),
        max_register_upload_bytes=_number(environ, "PREFS_MAX_REGISTER_UPLOAD_BYTES", Settings.max_register_upload_bytes, int, 1024),
        ratelimit_storage_url=_check_url(
            "PREFS_RATELIMIT_STORAGE_URL",
            _text(environ, "PREFS_RATELIMIT_STORAGE_URL") or Settings.ratelimit_storage_url,
            ("memory", "redis", "rediss"),
        ),
        trusted_proxies=_number(environ, "PREFS_TRUSTED_PROXIES", Settings.trusted_proxies, int, 0),
        export_dir=Path(_text(environ, "PREFS_EXPORT_DIR") or var_dir / "exports").absolute(),
        stripe_webhook_secret=_text(environ, "STRIPE_WEBHOOK_SECRET"),
        provisioner=_dotted(environ, "PREFS_PROVISIONER", Settings.provisioner),
        system_url_template=_system_url_template(environ),
        delivery_sla_seconds=_number(environ, "PREFS_DELIVERY_SLA_SECONDS", Settings.delivery_sla_seconds, float, 1),
        escalation_emails=_addresses(environ, "PREFS_ESCALATION_EMAILS"),
        escalation_webhook_url=(
            _check_url("PREFS_ESCALATION_WEBHOOK_URL", _text(environ, "PREFS_ESCALATION_WEBHOOK_URL"), ("http", "https"))
            if _text(environ, "PREFS_ESCALATION_WEBHOOK_URL")
            else ""
        ),
        escalation_repeat_seconds=_number(environ, "PREFS_ESCALATION_REPEAT_SECONDS", Settings.escalation_repeat_seconds, float, 1),
        initial_policy_version=_initial_policy_version(environ),
        org_name=overrides.pop("org_name", None) or _org_name(environ, production),
        support_email=overrides.pop("support_email", None) or _support_email(environ, production),
        privacy_policy_url=_privacy_policy_url(environ),
        org_postal_address=_org_contact(environ, "PREFS_ORG_POSTAL_ADDRESS", 300),
        org_phone=_org_contact(environ, "PREFS_ORG_PHONE", 40),
        plans=_plans(environ),
        default_jurisdiction=_default_jurisdiction(environ),
        register_stale=_register_stale(environ),
        ledger_signing_key=overrides.pop("ledger_signing_key", None) or _ledger_signing_key(environ, production, var_dir),
        ledger_sequence_interval_seconds=_number(
            environ, "PREFS_LEDGER_SEQUENCE_INTERVAL_SECONDS", Settings.ledger_sequence_interval_seconds, float, 0.01
        ),
        ledger_witness_url=_check_url("PREFS_LEDGER_WITNESS_URL", _text(environ, "PREFS_LEDGER_WITNESS_URL"), ("http", "https"))
        if _text(environ, "PREFS_LEDGER_WITNESS_URL")
        else "",
    )
    known = {f.name for f in fields(Settings)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return replace(settings, **overrides)
