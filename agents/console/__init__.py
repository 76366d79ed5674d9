"""The operator's console: web pages, the approvals inbox, controls and `/metrics`,
served by the daemon (`run FILE`) when the deployment has a `console:` section.

Modules: `tokens` (login tokens, stored hashed), `auth` (login, sessions, CSRF, security
headers), `views` (what the pages show, read through the same functions `status` and
the CLI use), `pages` (routes and actions), `metrics` (Prometheus), `app` (the Starlette
application and its uvicorn server inside the daemon's event loop).
"""
