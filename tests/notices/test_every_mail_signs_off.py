"""Every mail we send, of every template, names the organisation and its support
address in both its plain and its HTML part: render() adds them, so a new template
cannot forget (an HTML template of its own must include _footer.html, and this finds one that does not)."""

from __future__ import annotations

from importlib.resources import files

from jinja2 import Environment, meta

from prefs_service.extensions import db
from prefs_service.notices import service as notices

TEMPLATES = files("prefs_service.notices") / "templates"
SUPPLIED_BY_RENDER = {"base_url", "org_name", "support_email", "privacy_policy_url"}


def every_template() -> list[str]:
    return sorted(entry.name.removesuffix(".subject.txt") for entry in TEMPLATES.iterdir() if entry.name.endswith(".subject.txt"))


def sample_context(template: str) -> dict[str, str]:
    """A value for each variable the template's parts ask for."""
    environment = Environment(autoescape=True)
    names: set[str] = set()
    for part in (f"{template}.subject.txt", f"{template}.txt", f"{template}.html"):
        if (TEMPLATES / part).is_file():
            names |= meta.find_undeclared_variables(environment.parse((TEMPLATES / part).read_text()))
    return {name: f"sample-{name}" for name in names - SUPPLIED_BY_RENDER}


def test_every_mail_names_the_organisation_and_the_support_address(make_app, smtp):
    app = make_app(privacy_policy_url="https://example.com/privacy")
    templates = every_template()
    assert len(templates) >= 15 and "preferences_link" in templates  # an HTML template of its own is among them
    with app.app_context():
        for template in templates:
            notices.queue(kind=template, recipient=f"{template}@example.com", template=template,
                          context=sample_context(template), idempotency_key=f"footer:{template}")  # fmt: skip
        db.session.commit()
    app.extensions["prefs.jobs"].start(threads=2)
    messages = smtp.wait_for(len(templates))
    assert sorted(m["To"].split("@")[0] for m in messages) == templates
    for message in messages:
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert "Example Test Ltd" in text and "help@example.com" in text and "https://example.com/privacy" in text, message["To"]
        assert "Example Test Ltd" in html and 'href="mailto:help@example.com"' in html, message["To"]
        assert 'href="https://example.com/privacy"' in html, message["To"]
        assert "&lt;" not in html, message["To"]  # the footer is markup, not escaped text
