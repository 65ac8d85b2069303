"""The newcomer's path, through the installed `prefs` command run from other
folders: one data folder, one line for an unmigrated database, a policy version
from the first upgrade, and links for the port actually served."""

from __future__ import annotations

import email
import email.policy
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from prefs_service.cli import main
from prefs_service.config import load_settings
from tests.conftest import free_port
from tests.helpers import Api, eventually

PREFS = str(Path(sys.executable).parent / "prefs")
NOT_MIGRATED = "prefs: the database is not up to date; run `prefs db upgrade` first."
KEY = "k" * 40


def prefs(*args: str, cwd: Path, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd)}
    return subprocess.run([PREFS, *args], cwd=cwd, env={**base, **env}, input=stdin, capture_output=True, text=True, timeout=120)


def folders(tmp_path: Path, *names: str) -> list[Path]:
    made = [tmp_path / name for name in names]
    for folder in made:
        folder.mkdir()
    return made


def test_without_prefs_var_dir_the_data_folder_is_the_checkouts_var_whatever_the_working_folder(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"PREFS_SECRET_KEYS": KEY, "PREFS_IDENTIFIER_KEY": KEY})  # given keys: nothing is written
    assert settings.var_dir == repo_root / "var"
    assert settings.database_url == f"sqlite:///{repo_root / 'var' / 'prefs.db'}"
    assert not (tmp_path / "var").exists()


def test_prefs_run_from_other_folders_uses_one_data_folder(tmp_path):
    data, first, second = folders(tmp_path, "data", "first", "second")
    env = {"PREFS_VAR_DIR": str(data)}
    upgraded = prefs("db", "upgrade", cwd=first, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    created = prefs("api-key", "create", "--name", "mailer", "--scope", "consent:read", cwd=first, env=env)
    assert created.returncode == 0, created.stderr
    listed = prefs("api-key", "list", cwd=second, env=env)
    assert listed.returncode == 0 and "mailer" in listed.stdout
    assert not (first / "var").exists() and not (second / "var").exists()
    assert (data / "secret_key").read_text() and (data / "prefs.db").exists()


@pytest.mark.parametrize(
    "command",
    [
        ("api-key", "list"),
        ("api-key", "create", "--name", "mailer", "--scope", "consent:read"),
        ("api-key", "revoke", "abcdef"),
        ("staff", "create", "ops@example.com"),
        ("policy", "list"),
        ("policy", "publish", "2026-01", "--last-updated", "2026-01-01"),
        ("import", "consents", "consents.csv"),
        ("worker",),
        ("serve", "--port", str(free_port())),  # refused before it binds
    ],
)
def test_a_command_on_an_unmigrated_database_says_so_in_one_line(tmp_path, command):
    data, elsewhere = folders(tmp_path, "data", "elsewhere")
    (elsewhere / "consents.csv").write_text("email,channel,purpose,status\na@example.com,email,newsletter,granted\n")
    result = prefs(*command, cwd=elsewhere, env={"PREFS_VAR_DIR": str(data)}, stdin="a good long password\n")
    assert result.returncode == 2
    assert result.stderr.strip() == NOT_MIGRATED and result.stdout == ""


def test_a_database_behind_the_code_is_refused_the_same_way(tmp_path):
    data, elsewhere = folders(tmp_path, "data", "elsewhere")
    env = {"PREFS_VAR_DIR": str(data)}
    partly = prefs("db", "upgrade", "0004", cwd=elsewhere, env=env)
    assert partly.returncode == 0 and "Published" not in partly.stdout  # the policy comes with the last migration
    result = prefs("worker", cwd=elsewhere, env=env)
    assert (result.returncode, result.stderr.strip()) == (2, NOT_MIGRATED)


def test_db_upgrade_gives_an_existing_database_without_a_policy_the_initial_one_once(app, client, api_key):
    runner = app.test_cli_runner()
    first = runner.invoke(main, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "Published the initial privacy-policy version 'initial'" in first.output and "prefs policy publish" in first.output
    again = runner.invoke(main, ["db", "upgrade"])
    assert again.exit_code == 0 and "Published" not in again.output
    assert [line.split()[0] for line in runner.invoke(main, ["policy", "list"]).output.splitlines()] == ["initial"]
    api = Api(client, api_key("consent:read", "consent:write", "subjects:write"))
    subject = api.post("/v1/subjects", {"email": "old@example.com"}).json
    backdated = api.record(subject_id=subject["id"], occurred_at="2001-05-01T00:00:00Z").json
    assert backdated["policy_version"] == "initial"  # the placeholder covers the time before versions


def test_the_real_policy_published_after_the_initial_one_stamps_new_events(app, client, api_key):
    runner = app.test_cli_runner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(main, ["policy", "publish", "2026-12", "--last-updated", "2026-12-01"]).exit_code == 0
    api = Api(client, api_key("consent:write", "subjects:write"))
    subject = api.post("/v1/subjects", {"email": "new@example.com"}).json
    assert api.record(subject_id=subject["id"]).json["policy_version"] == "2026-12"


def test_an_initial_policy_version_too_long_is_a_configuration_error(tmp_path):
    data, elsewhere = folders(tmp_path, "data", "elsewhere")
    result = prefs("db", "upgrade", cwd=elsewhere, env={"PREFS_VAR_DIR": str(data), "PREFS_INITIAL_POLICY_VERSION": "v" * 41})
    assert result.returncode == 2 and "PREFS_INITIAL_POLICY_VERSION" in result.stderr


class Served:
    """A server started by `argv` (`prefs serve …` or `make run …`) in a process
    group of its own; stopped with SIGTERM to that group."""

    def __init__(self, argv: list[str], *, cwd: Path, port: int, env: dict[str, str]):
        self.port = port
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        eventually(self._healthy, timeout=120, interval=0.2, what=f"a server on port {port}")

    def _healthy(self) -> bool:
        assert self.process.poll() is None, self.process.stderr.read() if self.process.stderr else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as answer:
                return answer.status == 200
        except OSError:  # not listening yet
            return False

    def stop(self) -> str:
        os.killpg(self.process.pid, signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=60)
        return stderr


def api_poster(port: int, key: str):
    def post(path: str, body: dict) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310  # our own http:// address
            return json.loads(answer.read())

    return post


def served_links_and_event(tmp_path: Path, *, env: dict[str, str]) -> tuple[dict, dict, str]:
    """A fresh data folder upgraded and served on a free port: an unsubscribe
    link minted and a consent recorded through the API."""
    data, elsewhere = folders(tmp_path, "data", "elsewhere")
    env = {"PREFS_VAR_DIR": str(data), **env}
    assert prefs("db", "upgrade", cwd=elsewhere, env=env).returncode == 0
    key = prefs("api-key", "create", "--name", "t", "--scope", "admin", cwd=elsewhere, env=env).stdout.splitlines()[-1]
    port = free_port()
    server = Served([PREFS, "serve", "--port", str(port)], cwd=elsewhere, port=port, env=env)
    post = api_poster(port, key)
    try:
        subject = post("/v1/subjects", {"email": "new@example.com"})
        links = post("/v1/unsubscribe-links", {"subject_id": subject["id"], "purpose": "newsletter"})
        event = post("/v1/consents", {"subject_id": subject["id"], "channel": "email", "purpose": "newsletter", "status": "granted"})
    finally:
        said = server.stop()
    return links, event | {"port": port}, said


def test_serve_on_another_port_mints_links_for_it_and_stamps_the_initial_policy(tmp_path):
    links, event, said = served_links_and_event(tmp_path, env={})
    base = f"http://127.0.0.1:{event['port']}/"
    assert links["url"].startswith(base + "u/") and links["preferences_url"].startswith(base + "preferences/")
    assert links["headers"]["List-Unsubscribe"].startswith(f"<{base}u/")
    assert event["policy_version"] == "initial"
    assert f"links in mail use http://127.0.0.1:{event['port']}" in said and f"data folder {tmp_path / 'data'}" in said


def test_prefs_base_url_wins_over_the_port_served(tmp_path):
    links, _, _ = served_links_and_event(tmp_path, env={"PREFS_BASE_URL": "https://prefs.example.com"})
    assert links["url"].startswith("https://prefs.example.com/u/")


def test_make_run_on_another_port_mails_links_for_that_port(repo_root, tmp_path):
    data = folders(tmp_path, "data")[0]
    port = free_port()
    server = Served(["make", "--no-print-directory", "run", f"PORT={port}"], cwd=repo_root, port=port, env={"PREFS_VAR_DIR": str(data)})
    try:
        env = {"PREFS_VAR_DIR": str(data)}
        key = prefs("api-key", "create", "--name", "crm", "--scope", "subjects:write", cwd=tmp_path, env=env).stdout.splitlines()[-1]
        api_poster(port, key)("/v1/subjects", {"email": "reader@example.com"})
        # The person asks for their preferences link on the page, as anyone can.
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with browser.open(f"http://127.0.0.1:{port}/preferences", timeout=30) as form:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.read().decode()).group(1)
        body = urllib.parse.urlencode({"csrf_token": csrf, "email": "reader@example.com"}).encode()
        with browser.open(f"http://127.0.0.1:{port}/preferences", data=body, timeout=30) as answer:
            assert answer.status == 200
        mail = eventually(lambda: next(iter((data / "outbox").glob("*.eml")), None), timeout=30, what="the mailed link in var/outbox")
    finally:
        server.stop()
    message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    assert f"http://127.0.0.1:{port}/preferences/" in text and "127.0.0.1:8000" not in text
