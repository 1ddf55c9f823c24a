"""The dashboard's sign-in: a token, checked once, for a server-side session whose random id (never
the token) is kept in an HttpOnly cookie (which the browser also sends with the live stream,
where a page cannot set headers). Sign-out ends the session on the server."""

from __future__ import annotations

import math
from datetime import datetime

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from monitor.api.deps import SessionDep, public
from monitor.auth import (
    BAD_TOKEN,
    COOKIE,
    authenticate,
    create_session,
    end_session,
    principal_of,
    required,
    unauthorized,
)

# anyone's: signing in checks the token it is given itself
router = APIRouter(prefix="/session", tags=["session"], dependencies=[Depends(public)])


class SessionLogin(BaseModel):
    token: str = Field(min_length=1, max_length=200)


class SessionPublic(BaseModel):
    auth: str = Field(description="open (no token needed) or required")
    signed_in: bool
    scope: str | None = None
    project: str | None = None


class SessionStarted(SessionPublic):
    expires_at: datetime = Field(description="when this sign-in ends, unless signed out before")


def _cookie_options(request: Request) -> dict:
    return {"httponly": True, "samesite": "strict", "path": "/",
            "secure": request.url.scheme == "https"}


@router.get("", response_model=SessionPublic)
def read_session(request: Request, session: SessionDep) -> SessionPublic:
    """Whether this server needs a token, and whose this browser's session is."""
    if not required(request.app.state.settings):
        return SessionPublic(auth="open", signed_in=True, scope="admin", project="*")
    who = principal_of(request, session)
    if who is None:
        return SessionPublic(auth="required", signed_in=False)
    return SessionPublic(auth="required", signed_in=True, scope=who.role.value,
                         project=who.project)


@router.post("", response_model=SessionStarted)
def sign_in(request: Request, response: Response, session: SessionDep,
            body: SessionLogin) -> SessionStarted:
    """Check a token and start a dashboard session for it: the browser gets an HttpOnly,
    SameSite=Strict cookie holding the session's random id (not the token), valid for
    GANWATCH_SESSION_TTL seconds or until sign-out or the token's revocation."""
    who = authenticate(session, body.token)
    if who is None:
        raise unauthorized(BAD_TOKEN)
    auth = "required" if required(request.app.state.settings) else "open"
    ttl = request.app.state.settings.session_ttl
    session_id, row = create_session(session, who, ttl)
    response.set_cookie(COOKIE, session_id, max_age=max(1, math.ceil(ttl)),
                        **_cookie_options(request))
    return SessionStarted(auth=auth, signed_in=True, scope=who.role.value,
                          project=who.project, expires_at=row.expires_at)


@router.delete("", status_code=204)
def sign_out(request: Request, session: SessionDep) -> Response:
    """Sign out: the session ends on the server (its cookie, replayed, is refused) and the
    browser's cookie is cleared."""
    cookie = request.cookies.get(COOKIE)
    if cookie:
        end_session(session, cookie)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, **_cookie_options(request))
    return response
