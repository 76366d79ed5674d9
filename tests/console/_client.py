"""A logged-in HTTP client of the console, and the form fields of its pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token in the first form of `html`."""
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


@contextmanager
def logged_in(url: str, token: str) -> Iterator[httpx.Client]:
    """A client with a session cookie, through the login form."""
    with httpx.Client(base_url=url, timeout=30) as client:
        form = client.get("/login")
        reply = client.post("/login", data={"csrf": csrf_of(form.text), "token": token})
        assert reply.status_code == 303, reply.text
        yield client
