"""Notices are delivered once, as proper MIME mail, through a real SMTP server."""

from __future__ import annotations

from email import message_from_bytes, policy

from tests.helpers import jobs_of, notice, queue_preferences_mail


def test_a_queued_notice_is_mailed_once_as_multipart_mime(app, smtp, worker):
    notice_id = queue_preferences_mail(app, recipient="Reader@Example.com")
    worker.wait()
    [message] = smtp.wait_for(1)
    assert message["To"] == "Reader@Example.com"
    assert message["From"] == app.config["PREFS"].mail_from_transactional
    assert message["Subject"] == "Your link to manage your communication preferences"
    assert message["Message-ID"].startswith(f"<notice-{notice_id}.") and message["Date"]
    assert message["Auto-Submitted"] == "auto-generated"
    assert "List-Unsubscribe" not in message
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "https://prefs.example/preferences/abc" in text and 'href="https://prefs.example/preferences/abc"' in html
    sent = notice(app, notice_id)
    assert sent.status == "sent" and sent.message_id == message["Message-ID"] and sent.sent_at


def test_the_same_idempotency_key_is_one_mail(app, smtp, worker):
    first = queue_preferences_mail(app, key="same")
    second = queue_preferences_mail(app, key="same")
    worker.wait()
    assert first == second
    assert len(smtp.wait_for(1)) == 1
    assert len(jobs_of(app, "notices.deliver")) == 1


def test_file_transport_writes_one_eml_per_message(make_app, tmp_path):
    app = make_app(mail_url=f"file://{tmp_path / 'outbox'}")
    app.extensions["prefs.jobs"].start(threads=1)
    queue_preferences_mail(app, key="file-1")
    from tests.conftest import InProcessWorker

    InProcessWorker(app).wait()
    [path] = list((tmp_path / "outbox").glob("*.eml"))
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"] == "reader@example.com"
