"""Login, sessions, CSRF and the security headers of every response.

- Login exchanges a console token (`console token create FILE`) for a session. The
  session is Starlette's signed cookie (its `SessionMiddleware`, itsdangerous under it),
  HttpOnly and SameSite=Strict, Secure when the console serves TLS, signed with a key
  made at start-up: a daemon restart logs everyone out, and no key is ever written.
- The session holds the token's id (never the token), checked against the store on
  every request, so revoking a token ends its sessions at once.
- Every POST carries the session's CSRF token in a form field `csrf`; a missing or
  wrong one is refused with 403 before anything is read or changed.
- Every response says `Content-Security-Policy: default-src 'self'; frame-ancestors
  'none'` and `X-Frame-Options: DENY`: no inline script, nothing from elsewhere, no
  framing.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agents.console import tokens

SESSION_COOKIE = "covenant_console"
CSP = (
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in _HEADERS}
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in names]
                message["headers"] = kept + _HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


async def csrf_refusal(request: Request) -> Response | None:
    """A 403 response if the POST's `csrf` field is missing or not the session's; None
    if it matches."""
    form = await request.form()
    sent = form.get("csrf")
    expected = request.session.get("csrf")
    if not isinstance(sent, str) or not sent:
        return PlainTextResponse(
            "refused: this form has no CSRF token; reload the page and submit it again",
            status_code=403,
        )
    if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        return PlainTextResponse(
            "refused: the CSRF token does not match this session; reload the page and "
            "submit it again",
            status_code=403,
        )
    return None


def log_in(request: Request, engine: Engine, token: str) -> tokens.ConsoleToken | None:
    """Start a session for `token` if it is live; the old session's data is dropped, so
    a session id planted before login is worth nothing after it."""
    record = tokens.check_token(engine, token.strip())
    if record is None:
        return None
    request.session.clear()
    request.session["token_id"] = record.id
    csrf_token(request.session)
    return record


def operator(request: Request, engine: Engine) -> str | None:
    """The logged-in token's id, or None (no session, or the token was revoked)."""
    token_id = request.session.get("token_id")
    if not isinstance(token_id, str) or not tokens.is_live(engine, token_id):
        return None
    return token_id


Handler = Callable[[Request], Awaitable[Response]]


class LoginThrottle:
    """Refused logins allowed per client address within a window; past that, the address
    is answered 429 until the window has moved on. Each refused login is an audit entry
    in every agent's log, so without this anyone who can reach the form could flood the
    logs. Console tokens are 256-bit random, so this is about the logs, not guessing."""

    def __init__(self, limit: int = 5, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._refused: dict[str, deque[float]] = {}

    def wait(self, source: str, now: float | None = None) -> float:
        """Seconds `source` must wait before its next login attempt (0: it may try)."""
        now = time.monotonic() if now is None else now
        times = self._refused.get(source)
        if times is None:
            return 0.0
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._refused[source]
            return 0.0
        return max(0.0, times[0] + self.window - now) if len(times) >= self.limit else 0.0

    def refused(self, source: str, now: float | None = None) -> None:
        """Count one refused login of `source`."""
        now = time.monotonic() if now is None else now
        self._refused.setdefault(source, deque()).append(now)
