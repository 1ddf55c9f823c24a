"""ASGI middleware in front of everything that reads a request's body: the checks that need no
route, done before any work is spent on a request that will be refused.

1. **Host** (DNS rebinding): a page on ``evil.example`` can make its name resolve to 127.0.0.1
   and then read the loopback server as its own origin; its requests still say
   ``Host: evil.example``. On an open server (no tokens), and on any server where
   ``GANWATCH_ALLOWED_HOSTS`` is set, only this server's own names are answered: loopback names
   (any port), the listen address, the host of ``GANWATCH_PUBLIC_URL`` and
   ``GANWATCH_ALLOWED_HOSTS`` (``*``: any). Anything else: 400. A server that requires tokens
   and has no allow-list answers any name: a rebinding page has neither a token nor the session
   cookie (bound to the real host name, SameSite=Strict), so it only gets 401s.
2. **Origin** (cross-site requests): a request that changes something (POST, PUT, PATCH, DELETE)
   and carries no ``Authorization`` header, so is authenticated by the dashboard's cookie or by
   nothing (an open server), must come from the dashboard itself: its ``Origin`` must be this
   server's own origin (scheme and Host, or GANWATCH_PUBLIC_URL's; a default port, 80 or 443,
   is the same as none) and its ``Sec-Fetch-Site`` ``same-origin`` (or ``none``). Clients that
   send neither (the trainer client, curl) are unaffected; a browser always sends them. 403.
   Bearer-token requests cannot be made cross-site without CORS, which this server never allows.
3. **Authentication before the body**: when tokens are required, the request's bearer token or
   session cookie is checked here, so a refused request's body is never read, let alone inflated
   (monitor/gzip_request.py). Same 401 as the route's; the route reuses the principal. Routes
   declared public (monitor/api/deps.py ``public``) are skipped, their bodies kept small; what
   a principal may do is the route's own dependency's to decide, after routing.
4. **Headers** on every response: ``X-Content-Type-Options: nosniff`` and
   ``Cross-Origin-Resource-Policy: same-origin`` (no other site embeds a sample PNG or an API
   answer); on the dashboard's HTML pages a Content-Security-Policy allowing only this server's
   own scripts.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from fastapi import HTTPException
from sqlalchemy.exc import OperationalError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor import auth
from monitor.api.deps import public_paths
from monitor.gzip_request import MAX_BODY_KEY, reply
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


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, lower-case, without a default port (80 for http, 443
    for https: a browser's Origin omits it), as an Origin header writes it; None when it has
    none (``null``, garbage)."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        return None
    if not scheme or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class GuardMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.public_origin = _origin_of(settings.public_url) if settings.public_url else None
        # The Host check guards a server that a page could use without credentials: an open
        # one. One that requires tokens answers any name unless GANWATCH_ALLOWED_HOSTS says
        # otherwise: a rebinding page has no token and no session cookie (bound to the real
        # host name, SameSite=Strict), so it gets only 401s, and trainers reach a team server
        # by whatever name they know it by (GANWATCH_URL=http://gpu-box:8765).
        self.tokens_required = auth.required(settings)
        self.check_host = not self.tokens_required or bool(settings.allowed_hosts.strip())
        self.open_paths: frozenset[str] | None = None  # of the routes declared public


    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.check_host and not self.settings.host_allowed(host):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await reply(send, 400, f"this server does not answer to the host name {host!r} "
                                    "(Host header); a name of its own must be listed in "
                                    "GANWATCH_ALLOWED_HOSTS (or be GANWATCH_PUBLIC_URL's host)")
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if method not in SAFE_METHODS and auth.bearer(Request(scope)) is None:
            refused = self._cross_site(scope, headers, host)
            if refused:
                await reply(send, 403, refused)
                return
        if self.open_paths is None:  # the app's routes, complete by its first request
            self.open_paths = public_paths(scope["app"].routes)
        if path in self.open_paths:
            scope[MAX_BODY_KEY] = OPEN_BODY_BYTES
        elif (path.startswith("/api/") or method not in SAFE_METHODS) and self.tokens_required:
            try:
                await asyncio.to_thread(self._authenticate, scope)
            except HTTPException as exc:
                await reply(send, exc.status_code, exc.detail, exc.headers)
                return
            except OperationalError as exc:
                log.warning("database error: %s", exc)
                await reply(send, 503, "the database is unavailable; retry later")
                return
        await self.app(scope, receive, self._with_headers(send, path))

    def _cross_site(self, scope: Scope, headers: Headers, host: str) -> str | None:
        """Why a state-changing request without a bearer token is refused, or None."""
        origin = headers.get("origin")
        own = _origin_of(f"{scope.get('scheme', 'http')}://{host}")
        if origin is not None and _origin_of(origin) not in ({own, self.public_origin} - {None}):
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
