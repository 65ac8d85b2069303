"""Settings: bad values stop start-up naming the variable; development keeps its own keys."""

from __future__ import annotations

import base64

import pytest

from prefs_service.config import ConfigError, load_settings

GOOD_KEY = "k" * 40
LEDGER_KEY = base64.b64encode(b"l" * 32).decode()


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"PREFS_ENV": "staging"}, "PREFS_ENV"),
        ({"PREFS_DATABASE_URL": "prefs.db"}, "PREFS_DATABASE_URL"),
        ({"PREFS_BROKER_URL": "kafka://x"}, "PREFS_BROKER_URL"),
        ({"PREFS_SECRET_KEYS": "short"}, "PREFS_SECRET_KEYS"),
        ({"PREFS_IDENTIFIER_KEY": "short"}, "PREFS_IDENTIFIER_KEY"),
        ({"PREFS_MAIL_URL": "mailto:x"}, "PREFS_MAIL_URL"),
        ({"PREFS_MAIL_URL": "smtp://"}, "PREFS_MAIL_URL"),
        ({"PREFS_MAIL_FROM_TRANSACTIONAL": "nobody"}, "PREFS_MAIL_FROM_TRANSACTIONAL"),
        ({"PREFS_MAIL_FROM_MARKETING": "two words@x"}, "PREFS_MAIL_FROM_MARKETING"),
        ({"PREFS_BASE_URL": "ftp://x"}, "PREFS_BASE_URL"),
        ({"PREFS_WORKER_THREADS": "many"}, "PREFS_WORKER_THREADS"),
        ({"PREFS_WORKER_THREADS": "0"}, "PREFS_WORKER_THREADS"),
        ({"PREFS_LOG_LEVEL": "LOUD"}, "PREFS_LOG_LEVEL"),
        ({"PREFS_SUPPORT_EMAIL": "not an email"}, "PREFS_SUPPORT_EMAIL"),
        ({"PREFS_SUPPORT_EMAIL": "Support <support@example.com>"}, "PREFS_SUPPORT_EMAIL"),
        ({"PREFS_ORG_NAME": "x" * 201}, "PREFS_ORG_NAME"),
        ({"PREFS_PRIVACY_POLICY_URL": "example.com/privacy"}, "PREFS_PRIVACY_POLICY_URL"),
        ({"PREFS_PRIVACY_POLICY_URL": "javascript:alert(1)"}, "PREFS_PRIVACY_POLICY_URL"),
        ({"PREFS_PLANS": "pro"}, "PREFS_PLANS"),
        ({"PREFS_PLANS": "pro=,team=Team"}, "PREFS_PLANS"),
        ({"PREFS_PLANS": '{"pro": 3}'}, "PREFS_PLANS"),
        ({"PREFS_PLANS": "{not json"}, "PREFS_PLANS"),
    ],
)
def test_a_bad_value_names_the_variable(tmp_path, environ, variable):
    with pytest.raises(ConfigError, match=variable):
        load_settings({"PREFS_VAR_DIR": str(tmp_path), **environ})


def test_production_refuses_to_start_without_keys_or_https(tmp_path):
    base = {"PREFS_ENV": "production", "PREFS_VAR_DIR": str(tmp_path), "PREFS_BASE_URL": "https://prefs.example.com"}
    with pytest.raises(ConfigError, match="PREFS_SECRET_KEYS"):
        load_settings(base)
    with pytest.raises(ConfigError, match="PREFS_IDENTIFIER_KEY"):
        load_settings({**base, "PREFS_SECRET_KEYS": GOOD_KEY})
    with pytest.raises(ConfigError, match="PREFS_BASE_URL"):
        load_settings({**base, "PREFS_SECRET_KEYS": GOOD_KEY, "PREFS_IDENTIFIER_KEY": GOOD_KEY, "PREFS_BASE_URL": "http://x"})
    keys = {**base, "PREFS_SECRET_KEYS": GOOD_KEY, "PREFS_IDENTIFIER_KEY": GOOD_KEY}
    with pytest.raises(ConfigError, match="PREFS_ORG_NAME"):
        load_settings({**keys, "PREFS_SUPPORT_EMAIL": "support@example.com"})
    with pytest.raises(ConfigError, match="PREFS_SUPPORT_EMAIL"):
        load_settings({**keys, "PREFS_ORG_NAME": "Example Ltd"})
    public_face = {"PREFS_ORG_NAME": "Example Ltd", "PREFS_SUPPORT_EMAIL": "support@example.com"}
    with pytest.raises(ConfigError, match="PREFS_LEDGER_SIGNING_KEY is required"):
        load_settings({**keys, **public_face})
    settings = load_settings({**keys, **public_face, "PREFS_LEDGER_SIGNING_KEY": LEDGER_KEY})
    assert settings.production and not (tmp_path / "secret_key").exists() and not (tmp_path / "ledger_signing_key").exists()


def test_the_ledger_signing_key_is_a_base64_ed25519_seed_kept_under_var_in_development(tmp_path):
    first = load_settings({"PREFS_VAR_DIR": str(tmp_path)})
    assert first.ledger_signing_key == load_settings({"PREFS_VAR_DIR": str(tmp_path)}).ledger_signing_key
    assert len(base64.b64decode(first.ledger_signing_key)) == 32
    assert (tmp_path / "ledger_signing_key").stat().st_mode & 0o777 == 0o600
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ConfigError, match="PREFS_LEDGER_SIGNING_KEY must be standard base64 of a raw 32-byte Ed25519 seed"):
            load_settings({"PREFS_VAR_DIR": str(tmp_path), "PREFS_LEDGER_SIGNING_KEY": bad})
    with pytest.raises(ConfigError, match="PREFS_LEDGER_WITNESS_URL"):
        load_settings({"PREFS_VAR_DIR": str(tmp_path), "PREFS_LEDGER_WITNESS_URL": "ftp://witness.example"})
    with pytest.raises(ConfigError, match="PREFS_LEDGER_SEQUENCE_INTERVAL_SECONDS"):
        load_settings({"PREFS_VAR_DIR": str(tmp_path), "PREFS_LEDGER_SEQUENCE_INTERVAL_SECONDS": "soon"})


def test_development_generates_and_keeps_its_keys_under_var(tmp_path):
    first = load_settings({"PREFS_VAR_DIR": str(tmp_path)})
    second = load_settings({"PREFS_VAR_DIR": str(tmp_path)})
    assert first.secret_keys == second.secret_keys and len(first.secret_keys[0]) >= 32
    assert first.identifier_key == second.identifier_key != first.secret_keys[0]
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert first.database_url == f"sqlite:///{tmp_path / 'prefs.db'}"
    assert first.mail_url == f"file://{tmp_path / 'outbox'}"


def test_secret_keys_are_newest_first_and_postgres_urls_use_psycopg(tmp_path):
    settings = load_settings(
        {
            "PREFS_VAR_DIR": str(tmp_path),
            "PREFS_SECRET_KEYS": f"{'n' * 40}, {'o' * 40}",
            "PREFS_DATABASE_URL": "postgresql://u@db/prefs",
        }
    )
    assert settings.secret_keys == ("n" * 40, "o" * 40)
    assert settings.database_url == "postgresql+psycopg://u@db/prefs"


def test_the_cli_reports_a_configuration_error_and_exits_2(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [str(Path(sys.executable).parent / "prefs"), "api-key", "list"],
        env={"PREFS_VAR_DIR": str(tmp_path), "PREFS_BROKER_URL": "kafka://x", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "PREFS_BROKER_URL" in result.stderr


def test_the_public_face_has_development_defaults_and_reads_plans_either_way(tmp_path):
    settings = load_settings({"PREFS_VAR_DIR": str(tmp_path)})
    assert settings.org_name and "@" in settings.support_email and settings.privacy_policy_url == "" and settings.plans == {}
    pairs = load_settings({"PREFS_VAR_DIR": str(tmp_path), "PREFS_PLANS": "pro=Pro plan, team = Team plan"})
    assert pairs.plans == {"pro": "Pro plan", "team": "Team plan"}
    as_json = load_settings({"PREFS_VAR_DIR": str(tmp_path), "PREFS_PLANS": '{"pro_yearly": "Pro, paid yearly"}'})
    assert as_json.plans == {"pro_yearly": "Pro, paid yearly"}
    named = load_settings(
        {"PREFS_VAR_DIR": str(tmp_path), "PREFS_ORG_NAME": " Acme Ltd ", "PREFS_SUPPORT_EMAIL": "Help@Example.com",
         "PREFS_PRIVACY_POLICY_URL": "https://acme.example/privacy"}
    )  # fmt: skip
    assert (named.org_name, named.support_email, named.privacy_policy_url) == (
        "Acme Ltd",
        "Help@example.com",
        "https://acme.example/privacy",
    )
