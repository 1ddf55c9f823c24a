"""Who may do what: API tokens per project, and the server's auth mode.

Modes (``GANWATCH_AUTH``): ``open`` (no tokens: everything allowed, the single-user local
server), ``required`` (every API request but the health check needs a token), and ``auto``
(the default): open when the server listens on a loopback address only, required otherwise.

Tokens (``ganwatch token create``) look like ``gw_<id>_<secret>``. The server keeps only the
SHA-256 of the secret (a random 256-bit value, so a plain hash is enough) and compares hashes in
constant time. A token has a scope and a project:

- ``ingest``: create runs in its project and write to them (points, samples, finish, rule
  settings), and read them;
- ``read``: read its project's runs, series, samples and alerts, and acknowledge alerts or
  silence rules (what the dashboard does);
- ``admin``: everything, every project, and webhooks.

A request carries it as ``Authorization: Bearer <token>``, or, from the dashboard, in the
``ganwatch_token`` cookie that ``POST /api/v1/session`` sets. Missing, malformed, unknown or
revoked: 401. Valid but not allowed (wrong scope, another project's run): 403.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request, status
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from monitor.models import Alert, ApiToken, Run, utcnow

SCOPES = ("ingest", "read", "admin")
COOKIE = "ganwatch_token"
ALL_PROJECTS = "*"


@dataclass(frozen=True)
class Principal:
    scope: str            # ingest | read | admin
    project: str          # "*" for admin
    token_id: int | None  # None on an open server

    @property
    def admin(self) -> bool:
        return self.scope == "admin"

    def sees(self, project: str) -> bool:
        return self.project in (ALL_PROJECTS, project)

    @property
    def only_project(self) -> str | None:
        """The project lists are filtered to, or None: every project."""
        return None if self.project == ALL_PROJECTS else self.project


OPEN = Principal(scope="admin", project=ALL_PROJECTS, token_id=None)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, *, project: str, scope: str, name: str = "") -> tuple[
        ApiToken, str]:
    """A new token: the row, and the token itself (shown once; only its hash is stored)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    project = ALL_PROJECTS if scope == "admin" else project
    if not project:
        raise ValueError("a project is needed for ingest and read tokens")
    secret = secrets.token_urlsafe(32)
    row = ApiToken(name=name, project=project, scope=scope, secret_sha256=_sha256(secret),
                   created_at=utcnow())
    session.add(row)
    session.commit()
    return row, f"gw_{row.id}_{secret}"


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, token_id: int) -> ApiToken | None:
    row = session.get(ApiToken, token_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()
    return row


def authenticate(session: Session, raw: str) -> Principal | None:
    """The token's principal, or None: unknown, malformed or revoked."""
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "gw" or not parts[1].isdigit() or len(parts[1]) > 18:
        return None
    row = session.get(ApiToken, int(parts[1]))
    if row is None:
        _sha256(parts[2])  # the same work as for a known id
        return None
    if not hmac.compare_digest(row.secret_sha256, _sha256(parts[2])) or row.revoked_at:
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        session.commit()
    return Principal(scope=row.scope, project=row.project, token_id=row.id)


def required(settings) -> bool:
    mode = settings.auth
    if mode == "auto":
        host = settings.host.strip("[]")
        if host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(host).is_loopback
        except ValueError:
            return True
    return mode == "required"


def raw_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("x-ganwatch-token") or request.cookies.get(COOKIE)


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail,
                         headers={"WWW-Authenticate": 'Bearer realm="ganwatch"'})


def forbidden(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail)


# Writes a read token may make: what the dashboard's buttons do.
_READER_WRITES = ("/ack", "/silence")


def principal_for(request: Request, session: Session) -> Principal:
    """The request's principal, or a 401/403 saying why not. Run- and alert-level project
    checks happen here too, from the path's ``run_id`` or ``alert_id``."""
    settings = request.app.state.settings
    if not required(settings):
        return OPEN
    raw = raw_token(request)
    if not raw:
        raise unauthorized("this server needs a token: send 'Authorization: Bearer <token>' "
                           "(GANWATCH_TOKEN for the client; `ganwatch token create` makes one)")
    who = authenticate(session, raw)
    if who is None:
        raise unauthorized("the token is not valid (unknown, malformed or revoked)")
    path, method = request.url.path, request.method
    if path.startswith(("/api/v1/webhooks", "/api/v1/tokens")) and not who.admin:
        raise forbidden("webhooks need an admin token")
    if method not in ("GET", "HEAD") and who.scope == "read" and not path.endswith(
            _READER_WRITES):
        raise forbidden("a read token cannot write; use an ingest token")
    run_id = request.path_params.get("run_id") or request.query_params.get("run_id")
    if run_id is not None and not who.admin:
        project = session.scalar(select(Run.project).where(Run.id == run_id))
        if project is not None and not who.sees(project):
            raise forbidden(f"run {run_id!r} belongs to another project than this token's "
                            f"({who.project!r})")
    alert_id = request.path_params.get("alert_id")
    if alert_id is not None and not who.admin and str(alert_id).isdigit():
        project = session.scalar(select(Run.project).join(Alert, Alert.run_id == Run.id)
                                 .where(Alert.id == int(alert_id)))
        if project is not None and not who.sees(project):
            raise forbidden(f"alert {alert_id} belongs to another project than this token's "
                            f"({who.project!r})")
    return who
