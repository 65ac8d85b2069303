"""Mail written to a file:// outbox is readable by the service's user only, and
`forget` deletes the files of given messages (erasure uses it)."""

from __future__ import annotations

import stat
from email import message_from_bytes, policy

import pytest

from prefs_service.channels.email import forget
from tests.conftest import InProcessWorker
from tests.helpers import notice, queue_preferences_mail

pytestmark = pytest.mark.usefixtures("usual_umask")


@pytest.fixture
def outbox(tmp_path):
    return tmp_path / "var" / "outbox"


@pytest.fixture
def file_app(make_app, outbox):
    app = make_app(mail_url=f"file://{outbox}")
    app.extensions["prefs.jobs"].start(threads=1)
    return app


def _mails(outbox) -> dict[str, str]:
    """Message-ID → file name, for every mail in the outbox."""
    return {message_from_bytes(path.read_bytes(), policy=policy.default)["Message-ID"]: path.name for path in outbox.iterdir()}


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_mail_files_are_0600_in_0700_folders(file_app, outbox):
    queue_preferences_mail(file_app, key="private-1", recipient="reader@example.com")
    InProcessWorker(file_app).wait()
    [path] = list(outbox.iterdir())
    assert path.suffix == ".eml"
    assert _mode(path) == 0o600
    assert _mode(outbox) == 0o700 and _mode(outbox.parent) == 0o700


def test_an_existing_outbox_folder_is_tightened(make_app, outbox):
    outbox.mkdir(parents=True, mode=0o755)
    app = make_app(mail_url=f"file://{outbox}")
    app.extensions["prefs.jobs"].start(threads=1)
    queue_preferences_mail(app, key="private-2")
    InProcessWorker(app).wait()
    assert _mode(outbox) == 0o700


def test_forget_deletes_the_files_of_those_messages_only(file_app, outbox, smtp):
    first_id = queue_preferences_mail(file_app, key="forget-1", recipient="first@example.com")
    second_id = queue_preferences_mail(file_app, key="forget-2", recipient="second@example.com")
    InProcessWorker(file_app).wait()
    first, second = notice(file_app, first_id), notice(file_app, second_id)
    assert set(_mails(outbox)) == {first.message_id, second.message_id}

    assert forget([first.message_id], mail_url=f"file://{outbox}") == 1
    assert set(_mails(outbox)) == {second.message_id}
    assert forget([first.message_id], mail_url=f"file://{outbox}") == 0
    # Over SMTP the mail has left us: nothing to delete, and the outbox folder is not touched.
    assert forget([second.message_id], mail_url=smtp.url) == 0
    assert set(_mails(outbox)) == {second.message_id}
    assert forget([second.message_id, second.message_id], mail_url=f"file://{outbox}") == 1
    assert list(outbox.iterdir()) == []
