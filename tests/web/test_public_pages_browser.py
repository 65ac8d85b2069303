"""The public pages in Chromium: every text is readable (WCAG AA, 4.5:1, measured
from the computed colours) in light and dark, the buttons stacked on a phone do not
touch, and the dead ends lead somewhere."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.web import test_browser

# The browser fixtures of test_browser.py, shared rather than copied.
chromium, browser, live_server, pages = test_browser.chromium, test_browser.browser, test_browser.live_server, test_browser.pages

# The contrast of each element's own text against what is painted behind it: the
# backgrounds of it and its ancestors composited, its colour faded by every opacity above it.
CONTRASTS = """() => {
  const parse = (c) => { const p = c.match(/[\\d.]+/g).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const luminance = (c) => 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
  const found = [];
  for (const el of document.querySelectorAll("body *")) {
    const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!ownText || !el.getClientRects().length) continue;
    const chain = []; for (let e = el; e; e = e.parentElement) chain.unshift(e);
    let behind = [255, 255, 255, 1], opacity = 1;
    for (const e of chain) { const s = getComputedStyle(e); behind = over(parse(s.backgroundColor), behind); opacity *= Number(s.opacity); }
    const colour = parse(getComputedStyle(el).color);
    const text = over([colour[0], colour[1], colour[2], colour[3] * opacity], behind);
    const [light, dark] = [luminance(text), luminance(behind)].sort((a, b) => b - a);
    found.push({ element: el.tagName + "." + el.className, text: el.textContent.trim().slice(0, 40), ratio: (light + 0.05) / (dark + 0.05) });
  }
  return found;
}"""


@pytest.fixture
def person(live_server, api_key):
    client, headers = live_server.test_client(), api_key("admin")
    subject = client.post("/v1/subjects", json={"email": "pat@example.com", "phone": "+442079460555"}, headers=headers).json
    for channel, purpose in (("email", "newsletter"), ("phone", "marketing")):
        client.post("/v1/consents", json={"subject_id": subject["id"], "channel": channel, "purpose": purpose, "status": "granted"},
                    headers=headers)  # fmt: skip
    return client.post("/v1/unsubscribe-links", json={"subject_id": subject["id"], "purpose": "newsletter"}, headers=headers).json


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_text_on_the_public_pages_is_readable(live_server, pages, person, scheme):
    base = live_server.config["PREFS"].base_url
    page = pages.new_page(color_scheme=scheme)
    visits = {
        "home": lambda: page.goto(base + "/"),
        "preferences": lambda: page.goto(person["preferences_url"]),
        "unsubscribe": lambda: page.goto(person["url"]),
        "broken link": lambda: page.goto(base + "/u/not-a-token"),
        "link request error": lambda: (page.goto(base + "/preferences"), page.fill("#email", "not an email"),
                                       page.get_by_role("button", name="Send me a link").click()),
        "portal error": lambda: (page.goto(base + "/privacy-requests/new"), page.get_by_role("button", name="Send my request").click()),
    }  # fmt: skip
    for name, visit in visits.items():
        visit()
        page.wait_for_load_state("load")
        measured = page.evaluate(CONTRASTS)
        assert len(measured) > 5, name
        faint = [m for m in measured if m["ratio"] < 4.5]
        assert faint == [], f"{name} ({scheme}): {faint}"
    page.goto(person["preferences_url"])
    secondary = page.get_by_role("button", name="Stop all marketing")
    ratio = next(m["ratio"] for m in page.evaluate(CONTRASTS) if m["text"] == "Stop all marketing")
    assert ratio >= 4.5 and secondary.is_visible()


def test_on_a_phone_the_stacked_buttons_keep_apart_and_stop_all_says_what_changed_once(live_server, pages, person):
    page = pages.new_page(viewport={"width": 390, "height": 844})
    page.goto(person["preferences_url"])
    save = page.get_by_role("button", name="Save my choices").bounding_box()
    stop = page.get_by_role("button", name="Stop all marketing").bounding_box()
    apart = max(stop["y"] - (save["y"] + save["height"]), stop["x"] - (save["x"] + save["width"]))
    assert apart >= 8, (save, stop)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("button", name="Stop all marketing").click()
    assert page.get_by_role("status").inner_text() == "Your choices are saved (2 changes)."
    assert page.title().startswith("Saved: ") and urlsplit(page.url).query == ""
    page.reload()
    assert page.get_by_role("status").count() == 0 and not page.title().startswith("Saved")


def test_a_broken_link_and_an_empty_one_click_lead_somewhere(live_server, pages, person):
    base = live_server.config["PREFS"].base_url
    page = pages.new_page()
    page.goto(base + "/u/not-a-token")
    assert page.title() == "This link does not work – Example Test Ltd"
    page.get_by_role("link", name="Email me a new link").click()
    page.get_by_label("Your email address").fill("pat@example.com")
    page.get_by_role("button", name="Send me a link").click()
    assert page.get_by_role("heading").inner_text() == "Check your inbox"

    # A form that posts nothing to the unsubscribe address, as a mail program that left out the body would.
    page.set_content(f'<form method="post" action="{person["url"]}"><button>go</button></form>')
    page.get_by_role("button", name="go").click()
    assert page.get_by_role("heading").inner_text() == "Not unsubscribed yet"
    page.get_by_role("button", name="Unsubscribe").click()
    assert page.get_by_role("heading").inner_text() == "You are unsubscribed"


def test_the_home_page_leads_to_both_doors(live_server, pages):
    page = pages.new_page(viewport={"width": 390, "height": 844})
    page.goto(live_server.config["PREFS"].base_url + "/")
    assert page.get_by_role("heading", level=1).inner_text() == "Example Test Ltd"
    assert page.get_by_role("link", name="help@example.com").get_attribute("href") == "mailto:help@example.com"
    page.get_by_role("link", name="Make a request about my data").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Your data: make a request"
    page.go_back()
    page.get_by_role("link", name="Get a link to my preferences").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Manage your communication preferences"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
