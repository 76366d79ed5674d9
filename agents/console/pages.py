"""The console's routes: pages (GET) and operator actions (POST).

Each action goes through the function the CLI uses for it (`policies.approvals.decide`
for approvals, `policies.control` for halts and breaker resets), then is recorded in the
audit log of every agent it touched, signed by that agent's DID like its ticks, and
counted in `/metrics`. Approve and reject carry the transaction digest the page showed
and `decide` refuses them if the request is for another.

Logins, refused logins and logouts are recorded in every agent's log (a session can
act on any agent): the token's id and the client's address, never the token typed.
Refused logins are also counted per client address in `/metrics`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from agents.audit import AuditLog
from agents.console import auth, views
from agents.console.metrics import ConsoleMetrics
from config.clock import utc_now
from config.errors import ConfigError, CovenantError
from policies import approvals, control

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


class Pages:
    """The handlers, over the daemon's read sources, audit log and metrics."""

    def __init__(self, src: views.Sources, audit: AuditLog, metrics: ConsoleMetrics) -> None:
        self.src, self.audit, self.metrics = src, audit, metrics
        self.throttle = auth.LoginThrottle()

    def routes(self) -> list[Route]:
        """Every page and action route."""
        page, act = self._page, self._action
        return [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", act(self.logout), methods=["POST"]),
            Route("/", page(self.overview)),
            Route("/fragments/overview", page(self.overview_fragment, fragment=True)),
            Route("/agents/{name}", page(self.agent)),
            Route("/plans", page(self.plans)),
            Route("/approvals", page(self.approvals)),
            Route("/approvals/{id}/{decision:str}", act(self.decide), methods=["POST"]),
            Route("/agents/{name}/{control:str}", act(self.control), methods=["POST"]),
            Route("/all/{control:str}", act(self.control_all), methods=["POST"]),
        ]

    # -- plumbing ----------------------------------------------------------------------

    def _render(self, request: Request, name: str, status: int = 200, **data: Any) -> Response:
        context = {"csrf": auth.csrf_token(request.session), "deployment": self.src.deployment}
        return TEMPLATES.TemplateResponse(request, name, {**context, **data}, status_code=status)

    def _page(
        self, handler: Callable[[Request], Awaitable[Response]], *, fragment: bool = False
    ) -> Any:
        async def guarded(request: Request) -> Response:
            if auth.operator(request, self.src.store) is None:
                # A polled fragment says 401 rather than swap the login page into a table.
                if fragment:
                    return HTMLResponse("log in first (/login)", status_code=401)
                return RedirectResponse("/login", status_code=303)
            return await handler(request)

        return guarded

    def _action(self, handler: Callable[[Request, str], Awaitable[Response]]) -> Any:
        """Logged in, then the CSRF check, then the action; a refused action shows why."""

        async def guarded(request: Request) -> Response:
            who = auth.operator(request, self.src.store)
            if who is None:
                return HTMLResponse("refused: log in first (/login)", status_code=401)
            refusal = await auth.csrf_refusal(request)
            if refusal is not None:
                return refusal
            try:
                return await handler(request, f"console token {who}")
            except CovenantError as exc:
                return self._render(request, "error.html", status=409, message=str(exc))

        return guarded

    async def _record(self, agents: list[str], event: dict[str, Any]) -> None:
        self.metrics.console_actions.labels(event["action"]).inc()
        for agent in agents:
            await self.audit.record(agent, {"console": event})

    # -- login -------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        """The login page: one field, the console token."""
        return self._render(request, "login.html")

    async def login(self, request: Request) -> Response:
        """Exchange a token for a session (the form carries the pre-login CSRF token)."""
        refusal = await auth.csrf_refusal(request)
        if refusal is not None:
            return refusal
        token = (await request.form()).get("token")
        source = request.client.host if request.client else "unknown"
        wait = self.throttle.wait(source)
        if wait > 0:  # counted, not audited: the log is not the flood's to fill
            self.metrics.login_failures.labels(source).inc()
            return self._render(
                request,
                "login.html",
                status=429,
                error=f"too many refused logins from {source}; try again in {wait:.0f} s",
            )
        record = auth.log_in(request, self.src.store, token) if isinstance(token, str) else None
        everyone = list(self.src.agents)
        if record is None:
            self.throttle.refused(source)
            self.metrics.login_failures.labels(source).inc()
            await self._record(everyone, {"action": "login-refused", "source": source})
            return self._render(
                request,
                "login.html",
                status=401,
                error="unknown or revoked token; create one with `console token create FILE`",
            )
        by = f"console token {record.id}"
        await self._record(everyone, {"action": "login", "by": by, "source": source})
        return RedirectResponse("/", status_code=303)

    async def logout(self, request: Request, who: str) -> Response:
        """End the session."""
        await self._record(list(self.src.agents), {"action": "logout", "by": who})
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- pages -------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        """Every agent; the table refreshes itself from the fragment below."""
        pending = len(views.approvals(self.src))
        return self._render(
            request, "overview.html", rows=views.overview(self.src), pending=pending
        )

    async def overview_fragment(self, request: Request) -> Response:
        """The overview table alone, which the page polls."""
        return self._render(request, "_overview_table.html", rows=views.overview(self.src))

    async def agent(self, request: Request) -> Response:
        """One agent's recent ticks and console actions, as its audit log holds them."""
        name = request.path_params["name"]
        if name not in self.src.agents:
            return self._render(request, "error.html", 404, message=f"no agent {name!r}")
        return self._render(request, "agent.html", page=views.agent_page(self.src, name))

    async def plans(self, request: Request) -> Response:
        """Cross-chain plans and their legs."""
        return self._render(request, "plans.html", plans=views.plans(self.src))

    async def approvals(self, request: Request) -> Response:
        """The approvals inbox."""
        return self._render(request, "approvals.html", requests=views.approvals(self.src))

    # -- actions -----------------------------------------------------------------------

    async def decide(self, request: Request, who: str) -> Response:
        """Approve or reject one request, bound to the digest the page showed."""
        decision = request.path_params["decision"]
        if decision not in ("approve", "reject"):
            return self._render(request, "error.html", 404, message=f"no action {decision!r}")
        digest = (await request.form()).get("digest")
        if not isinstance(digest, str) or not digest:
            raise approvals.ApprovalError("the form names no transaction digest; reload it")
        decided = approvals.decide(
            self.src.store,
            request.path_params["id"],
            approve=decision == "approve",
            now=utc_now(),
            digest=digest,
            who=who,
        )
        event = {"action": decision, "approval": decided.id, "digest": digest, "by": who}
        await self._record([decided.agent], event)
        return RedirectResponse("/approvals", status_code=303)

    async def control(self, request: Request, who: str) -> Response:
        """Halt, resume or reset the breaker of one agent."""
        name, what = request.path_params["name"], request.path_params["control"]
        if name not in self.src.agents or what not in ("halt", "resume", "reset-breaker"):
            return self._render(request, "error.html", 404, message=f"no {what} for {name!r}")
        await self._apply(what, name, who)
        await self._record([name], {"action": what, "target": name, "by": who})
        return RedirectResponse("/", status_code=303)

    async def control_all(self, request: Request, who: str) -> Response:
        """Halt every agent, or lift the global halt."""
        what = request.path_params["control"]
        if what not in ("halt", "resume"):
            return self._render(request, "error.html", 404, message=f"no {what} for all")
        await self._apply(what, control.GLOBAL, who)
        event = {"action": f"{what}-all", "target": control.GLOBAL, "by": who}
        await self._record(list(self.src.agents), event)
        return RedirectResponse("/", status_code=303)

    async def _apply(self, what: str, target: str, who: str) -> None:
        store, now = self.src.store, utc_now()
        if what == "halt":
            control.halt(store, target, f"halted in the console by {who}", now)
        elif what == "resume" and not control.resume(store, target):
            raise ConfigError(f"{target!r} is not halted; nothing to resume")
        elif what == "reset-breaker" and not control.reset_breaker(store, target, now):
            raise ConfigError(f"{target!r} has no breaker state yet; nothing to reset")
