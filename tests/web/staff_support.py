"""Signing staff in through the real pages, for the console's tests."""

from __future__ import annotations

import re

from prefs_service.cli import main

PASSWORD = "correct horse battery staple"


def csrf_of(page) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()


def make_staff(app, email: str, role: str = "reviewer", password: str = PASSWORD) -> str:
    """A staff account made with `prefs staff create`; returns its address."""
    result = app.test_cli_runner().invoke(main, ["staff", "create", email, "--role", role], input=password + "\n")
    assert result.exit_code == 0, result.output
    return email.lower()


def sign_in(client, email: str, password: str = PASSWORD):
    page = client.get("/staff/login")
    return client.post("/staff/login", data={"csrf_token": csrf_of(page), "email": email, "password": password})


def signed_in(app, email: str, role: str = "reviewer"):
    """A fresh test client signed in as a new account of `role`."""
    make_staff(app, email, role)
    client = app.test_client()
    assert sign_in(client, email).status_code == 303
    return client


def post_form(client, path: str, data: dict | None = None, *, page: str = "/staff/dashboard", follow: bool = True):
    """POST a console form with a CSRF token taken from `page`."""
    token = csrf_of(client.get(page))
    return client.post(path, data={"csrf_token": token, **(data or {})}, follow_redirects=follow)


def alert_of(response) -> str:
    found = re.search(r'role="alert">(.*?)</', response.get_data(as_text=True), re.S)
    return found.group(1).strip() if found else ""


def status_of(response) -> str:
    found = re.search(r'role="status">(.*?)</p>', response.get_data(as_text=True), re.S)
    return found.group(1).strip() if found else ""
