"""ASGI middleware in front of everything that reads a request's body: the checks that need no
route, done before any work is spent on a request that will be refused.

1. **Host** (DNS rebinding): a page on ``evil.example`` can make its name resolve to 127.0.0.1
   and then read the loopback server as its own origin; its requests still say
   ``Host: evil.example``. Only this server's own names are answered: loopback names (any port),
   the listen address, the host of ``GANWATCH_PUBLIC_URL`` and ``GANWATCH_ALLOWED_HOSTS``
   (``*``: any). Anything else: 400.
2. **Origin** (cross-site requests): a request that changes something (POST, PUT, PATCH, DELETE)
   and carries no ``Authorization`` header, so is authenticated by the dashboard's cookie or by
   nothing (an open server), must come from the dashboard itself: its ``Origin`` must be this
   server's own origin and its ``Sec-Fetch-Site`` ``same-origin`` (or ``none``). Clients that
   send neither (the trainer client, curl) are unaffected; a browser always sends them. 403.
   Bearer-token requests cannot be made cross-site without CORS, which this server never allows.
3. **Authentication before the body**: when tokens are required, the request's bearer token or
   session cookie is checked here, so a refused request's body is never read, let alone inflated
   (monitor/gzip_request.py). Same 401 as the route's; the route reuses the principal.
4. **Headers** on every response: ``X-Content-Type-Options: nosniff`` and
   ``Cross-Origin-Resource-Policy: same-origin`` (no other site embeds a sample PNG or an API
   answer); on the dashboard's HTML pages a Content-Security-Policy allowing only this server's
   own scripts.
"""

from __future__ import annotations

import asyncio
import json
import logging

from fastapi import HTTPException
from sqlalchemy.exc import OperationalError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor import auth
from monitor.api.deps import OPEN_PATHS
from monitor.gzip_request import MAX_BODY_KEY
from monitor.settings import Settings

log = logging.getLogger("ganwatch")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")
# FastAPI's own /docs and /redoc load their scripts from a CDN, inline: framed by nobody, but
# not under the dashboard's policy.
DOCS_CSP = "frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# The sign-in body is a token: a few hundred bytes; read (and inflated) no further than this.
OPEN_BODY_BYTES = 16 * 1024


async def _reply(send: Send, status: int, detail: str, headers: dict | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           (b"x-content-type-options", b"nosniff")]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _origin_of(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        if not parts.scheme or not parts.hostname:
            return None
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}".lower()
    except ValueError:
        return None


class GuardMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.public_origin = _origin_of(settings.public_url) if settings.public_url else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self.settings.host_allowed(host):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await _reply(send, 400, f"this server does not answer to the host name {host!r} "
                                    "(Host header); a name of its own must be listed in "
                                    "GANWATCH_ALLOWED_HOSTS (or be GANWATCH_PUBLIC_URL's host)")
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        has_bearer = headers.get("authorization", "")[:7].lower() == "bearer "
        if method not in SAFE_METHODS and not has_bearer:
            refused = self._cross_site(scope, headers, host)
            if refused:
                await _reply(send, 403, refused)
                return
        if path in OPEN_PATHS:
            scope[MAX_BODY_KEY] = OPEN_BODY_BYTES
        elif (path.startswith("/api/") or method not in SAFE_METHODS) and auth.required(
                self.settings):
            try:
                await asyncio.to_thread(self._authenticate, scope)
            except HTTPException as exc:
                await _reply(send, exc.status_code, exc.detail, exc.headers)
                return
            except OperationalError as exc:
                log.warning("database error: %s", exc)
                await _reply(send, 503, "the database is unavailable; retry later")
                return
        await self.app(scope, receive, self._with_headers(send, path))

    def _cross_site(self, scope: Scope, headers: Headers, host: str) -> str | None:
        """Why a state-changing request without a bearer token is refused, or None."""
        origin = headers.get("origin")
        own = f"{scope.get('scheme', 'http')}://{host}".lower()
        if origin is not None and origin.strip().lower() not in (own, self.public_origin):
            return (f"cross-origin request refused: Origin {origin[:200]!r} is not this "
                    f"server's ({own}); the dashboard's own pages may change things with its "
                    "sign-in cookie, other sites may not (clients send 'Authorization: Bearer')")
        site = headers.get("sec-fetch-site")
        if site is not None and site.strip().lower() not in ("same-origin", "none"):
            return (f"cross-site request refused (Sec-Fetch-Site: {site[:50]!r}): only the "
                    "dashboard's own pages may change things with its sign-in cookie "
                    "(clients send 'Authorization: Bearer')")
        return None

    def _authenticate(self, scope: Scope) -> None:
        request = Request(scope)
        with scope["app"].state.sessionmaker() as session:
            auth.identify(request, session)  # raises the 401; remembers the principal

    @staticmethod
    def _with_headers(send: Send, path: str) -> Send:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if b"cross-origin-resource-policy" not in names:  # no other site embeds it
                    headers.append((b"cross-origin-resource-policy", b"same-origin"))
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html") and (
                        b"content-security-policy" not in names):
                    policy = DOCS_CSP if path in DOCS_PATHS else CSP
                    headers.append((b"content-security-policy", policy.encode()))
                message = {**message, "headers": headers}
            await send(message)

        return send_with_headers
