"""The agent's part of the request form, and a GPC signal, in Chromium."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.web import test_browser
from tests.web.test_public_pages_browser import CONTRASTS

chromium, browser, live_server, pages = test_browser.chromium, test_browser.browser, test_browser.live_server, test_browser.pages

PDF = b"%PDF-1.4\n% signed permission\n%%EOF\n"


def test_an_agent_fills_in_the_form_with_a_file_and_is_told_what_happens_next(live_server, pages, tmp_path):
    permission = tmp_path / "permission.pdf"
    permission.write_bytes(PDF)
    base = live_server.config["PREFS"].base_url
    for scheme in ("light", "dark"):
        page = pages.new_page(color_scheme=scheme, viewport={"width": 390, "height": 844})
        page.goto(f"{base}/privacy-requests/new")
        page.check("#type-access")
        page.fill("#email", "ann@example.com")
        page.check("#on_behalf")
        page.fill("#agent_name", "Dana Agent")
        page.fill("#agent_email", "dana@agency.example.com")
        page.set_input_files("#permission", str(permission))
        low = [c for c in page.evaluate(CONTRASTS) if c["ratio"] < 4.5]
        assert low == [], low
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than a phone
        page.click("button[type=submit]")
        assert "sent a link to the person you act for" in page.inner_text("main")


def test_a_browser_sending_gpc_is_opted_out_on_the_preference_page(live_server, pages, api_key):
    client, headers = live_server.test_client(), api_key("admin")
    subject = client.post("/v1/subjects", json={"email": "gpc@example.com"}, headers=headers).json
    body = {"subject_id": subject["id"], "channel": "partner", "purpose": "share_for_marketing", "status": "granted"}
    assert client.post("/v1/consents", json=body, headers=headers).status_code == 201
    link = client.post("/v1/unsubscribe-links", json={"subject_id": subject["id"], "purpose": "newsletter"}, headers=headers).json
    page = pages.new_page(extra_http_headers={"Sec-GPC": "1"})
    page.goto(live_server.config["PREFS"].base_url + urlsplit(link["preferences_url"]).path)
    assert "Global Privacy Control" in page.inner_text("main")
    assert not page.is_checked("input[value='partner.share_for_marketing']")
