from __future__ import annotations

import io
import re
import zipfile
from urllib.parse import urlsplit

import pytest


@pytest.fixture
def headers(api_key):
    return api_key("admin")


@pytest.fixture
def person(api):
    """Ann, with a newsletter grant (and its evidence) and a phone number."""
    subject = api.post("/v1/subjects", {"email": "ann@example.com", "phone": "+442079460777", "name": "Ann Example"}).json
    api.record(subject_id=subject["id"], evidence={"ip": "203.0.113.9", "user_agent": "SignupForm/2", "note": "footer"})
    return subject


def link_in(message, pattern: str) -> str:
    text = message.get_body(("plain",)).get_content()
    return urlsplit(re.search(r"https?://\S+" + pattern + r"\S+", text).group(0)).path


def mails_to(smtp, address: str):
    return [m for m in smtp.messages if m["To"] == address]


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
