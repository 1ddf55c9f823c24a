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

Each route states the least role it needs, as a dependency (``Depends(require(Role.read))``,
monitor/api/deps.py), never guessed from its URL: reading and the dashboard's buttons need
``read``, writing a run needs ``ingest``, webhooks need ``admin``; the roles are ordered, each
allowed what the ones below it are. ``authorize`` applies a route's requirement to a request.

A request carries it as ``Authorization: Bearer <token>``. The dashboard signs in once with
``POST /api/v1/session``: the server checks the token and keeps a *session* (a random id of its
own, stored as a SHA-256, expiring after ``GANWATCH_SESSION_TTL``, ended by ``DELETE
/api/v1/session`` or by revoking its token); the browser's HttpOnly ``ganwatch_session`` cookie
holds only that id, never the token. Missing, malformed, unknown or revoked: 401. Valid but not
allowed (wrong scope): 403. Another project's run or alert: 404, worded as for one
that does not exist, so that no answer tells which ids exist in other projects.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from fastapi import HTTPException, Request, status
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from monitor.errors import unknown_alert, unknown_run
from monitor.models import Alert, ApiToken, DashboardSession, Run, utcnow
from monitor.schemas import INT64_MAX


class Role(str, Enum):
    """What a token may do, from least to most: each role may do all that the ones before it
    may. The value is the token's ``scope`` as stored and as the API and CLI write it."""

    read = "read"      # read a project's runs; acknowledge alerts, silence rules
    ingest = "ingest"  # also create runs in its project and write to them
    admin = "admin"    # also every project, and webhooks

    def covers(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


SCOPES = ("ingest", "read", "admin")  # the order the CLI and its messages list them in
COOKIE = "ganwatch_session"
ALL_PROJECTS = "*"
# gw_<id>_<secret>: ASCII digits only ("²".isdigit() is true, and int() refuses it), and the
# alphabet of secrets.token_urlsafe; anything else is malformed before any work is done.
_TOKEN = re.compile(r"gw_([0-9]{1,18})_([A-Za-z0-9_-]{1,128})")
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,128}")
NO_TOKEN = ("this server needs a token: send 'Authorization: Bearer <token>' "
            "(GANWATCH_TOKEN for the client; `ganwatch token create` makes one)")
BAD_TOKEN = "the token is not valid (unknown, malformed or revoked)"
SESSION_ENDED = ("this dashboard session has ended (signed out, expired, or its token was "
                 "revoked): sign in again")
# The 403 of a principal whose role is below the route's, unless the route says otherwise.
REFUSALS = {Role.read: "this needs a read token",
            Role.ingest: "a read token cannot write; use an ingest token",
            Role.admin: "this needs an admin token"}


@dataclass(frozen=True)
class Principal:
    """Who sends a request: a token's role and project (or an open server's everything)."""

    role: Role
    project: str          # ALL_PROJECTS for admin
    token_id: int | None  # None on an open server
    token_name: str = ""  # the token's note (``ganwatch token create --name``)

    @property
    def admin(self) -> bool:
        return self.role is Role.admin

    def may(self, needed: Role) -> bool:
        return self.role.covers(needed)

    def sees(self, project: str) -> bool:
        return self.project in (ALL_PROJECTS, project)

    @property
    def only_project(self) -> str | None:
        """The project lists are filtered to, or None: every project."""
        return None if self.project == ALL_PROJECTS else self.project

    @classmethod
    def of_token(cls, row: ApiToken) -> Principal | None:
        """The principal of a stored token; None for a scope this server does not know (a
        row written by hand or by a newer version): refused, never guessed."""
        try:
            role = Role(row.scope)
        except ValueError:
            return None
        return cls(role=role, project=row.project, token_id=row.id, token_name=row.name or "")


@dataclass(frozen=True)
class Requirement:
    """What a route needs (declared on the route: monitor/api/deps.py ``require``/``public``):
    the least role that may call it, or None for a public route (no token at all), and the
    403's words for a principal below it."""

    role: Role | None
    refusal: str = ""


PUBLIC = Requirement(role=None)


OPEN = Principal(role=Role.admin, project=ALL_PROJECTS, token_id=None)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, *, project: str, scope: str, name: str = "") -> tuple[
        ApiToken, str]:
    """A new token: the row, and the token itself (shown once; only its hash is stored)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    role = Role(scope)
    project = ALL_PROJECTS if role is Role.admin else project
    if not project:
        raise ValueError("a project is needed for ingest and read tokens")
    secret = secrets.token_urlsafe(32)
    row = ApiToken(name=name, project=project, scope=role.value, secret_sha256=_sha256(secret),
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
        # its dashboard sessions end with it (they are refused anyway: sessions_principal
        # checks the token too)
        session.execute(update(DashboardSession)
                        .where(DashboardSession.token_id == token_id,
                               DashboardSession.revoked_at.is_(None))
                        .values(revoked_at=row.revoked_at))
        session.commit()
    return row


def authenticate(session: Session, raw: str) -> Principal | None:
    """The token's principal, or None: unknown, malformed or revoked."""
    match = _TOKEN.fullmatch(raw.strip())
    if match is None:
        return None
    token_id, secret = int(match[1]), match[2]
    row = session.get(ApiToken, token_id)
    if row is None:
        _sha256(secret)  # the same work as for a known id
        return None
    if not hmac.compare_digest(row.secret_sha256, _sha256(secret)) or row.revoked_at:
        return None
    who = Principal.of_token(row)
    if who is not None:
        _touch(session, row)
    return who


def _touch(session: Session, row: ApiToken) -> None:
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        session.commit()


def create_session(session: Session, who: Principal, ttl: float) -> tuple[str, DashboardSession]:
    """A new dashboard session for a token's principal: its id (for the cookie, shown once;
    only its hash is stored) and the row."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    # sessions that ended (signed out or expired) a day ago are of no use to anyone: dropped
    session.execute(delete(DashboardSession).where(or_(
        DashboardSession.expires_at < now - timedelta(days=1),
        DashboardSession.revoked_at < now - timedelta(days=1))))
    row = DashboardSession(secret_sha256=_sha256(session_id), token_id=who.token_id,
                           created_at=now, expires_at=now + timedelta(seconds=ttl))
    session.add(row)
    session.commit()
    return session_id, row


def _live_session(session: Session, session_id: str) -> tuple[DashboardSession, ApiToken] | None:
    if not _SESSION_ID.fullmatch(session_id):
        return None
    found = session.execute(
        select(DashboardSession, ApiToken)
        .join(ApiToken, ApiToken.id == DashboardSession.token_id)
        .where(DashboardSession.secret_sha256 == _sha256(session_id))).first()
    if found is None:
        return None
    row, token = found
    if row.revoked_at or token.revoked_at or row.expires_at <= utcnow():
        return None
    return row, token


def session_principal(session: Session, session_id: str) -> Principal | None:
    """The principal of a dashboard session's id, or None: unknown, signed out, expired, or
    its token revoked."""
    found = _live_session(session, session_id)
    if found is None:
        return None
    who = Principal.of_token(found[1])
    if who is not None:
        _touch(session, found[1])
    return who


def end_session(session: Session, session_id: str) -> bool:
    """Sign-out: the session is refused from now on. False when it had ended already."""
    found = _live_session(session, session_id)
    if found is None:
        return False
    found[0].revoked_at = utcnow()
    session.commit()
    return True


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


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None when there is none."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


_IDENTITY = "ganwatch.principal"  # request.state: who, once authenticated (monitor/guard.py)


def principal_of(request: Request, session: Session) -> Principal | None:
    """Who sends this request: its bearer token, else its dashboard session cookie; None when
    it has neither or the one it has is not valid (unknown, malformed, revoked, ended).
    Authenticated once per request (the guard middleware does it before the body is read; the
    route's dependency then finds it here)."""
    known = request.scope.get("state", {}).get(_IDENTITY)
    if known is not None:
        return known
    who = _credentials_principal(request, session)
    if who is not None:
        request.scope.setdefault("state", {})[_IDENTITY] = who
    return who


def _credentials_principal(request: Request, session: Session) -> Principal | None:
    raw = bearer(request)
    if raw is not None:
        return authenticate(session, raw) if raw else None
    cookie = request.cookies.get(COOKIE)
    return session_principal(session, cookie) if cookie else None


def still_valid(request: Request, session: Session) -> bool:
    """For a request that lasts (the live stream): are the credentials it was let in with
    still good now? False once the token is revoked, or the session signed out or expired."""
    if not required(request.app.state.settings):
        return True
    return _credentials_principal(request, session) is not None


def identify(request: Request, session: Session) -> Principal:
    """The request's principal (``principal_of``), or a 401 that says why there is none."""
    who = principal_of(request, session)
    if who is not None:
        return who
    raw = bearer(request)
    if raw is not None:
        raise unauthorized(BAD_TOKEN if raw else NO_TOKEN)
    raise unauthorized(SESSION_ENDED if request.cookies.get(COOKIE) else NO_TOKEN)


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail,
                         headers={"WWW-Authenticate": 'Bearer realm="ganwatch"'})


def forbidden(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail)


def authorize(request: Request, session: Session, needed: Requirement) -> Principal:
    """The request's principal for a route that needs ``needed``, or a 401/403/404 saying why
    not: no or a bad token, 401; a role below the route's, 403; another project's run or
    alert (the path's ``run_id`` or ``alert_id``, each of the query's ``run_id``), 404. A public
    route, and every route of an open server, is anyone's: the open principal."""
    if needed.role is None or not required(request.app.state.settings):
        return OPEN
    who = identify(request, session)
    if not who.may(needed.role):
        raise forbidden(needed.refusal or REFUSALS[needed.role])
    if not who.admin:
        _only_own_project(request, session, who)
    return who


_ALERT_ID = TypeAdapter(int)  # how the routes read ``alert_id`` (lax: "7", "+7", "7.0", "0_7")


def _only_own_project(request: Request, session: Session, who: Principal) -> None:
    """A 404 for a run or an alert the principal may not see, in the very words of one that
    does not exist (``errors.unknown_run``/``unknown_alert``): nothing tells a token which ids
    exist in other projects. Checked before the route runs, so a refused request changes
    nothing; every run id the request names is checked (the path's, and each ``?run_id=``),
    and an alert id is read as the route reads it, so "7.0" or "+7" cannot pass for another
    id than 7."""
    run_ids = request.query_params.getlist("run_id")
    if "run_id" in request.path_params:
        run_ids.insert(0, request.path_params["run_id"])
    for run_id in run_ids:
        project = session.scalar(select(Run.project).where(Run.id == run_id))
        if project is None or not who.sees(project):
            raise unknown_run(run_id)
    raw = request.path_params.get("alert_id")
    if raw is None:
        return
    try:
        alert_id = _ALERT_ID.validate_python(raw)
    except ValidationError:
        return  # not a number: the route answers 422, whoever asks
    project = None
    if 0 <= alert_id <= INT64_MAX:
        project = session.scalar(select(Run.project).join(Alert, Alert.run_id == Run.id)
                                 .where(Alert.id == alert_id))
    if project is None or not who.sees(project):
        raise unknown_alert(alert_id)
