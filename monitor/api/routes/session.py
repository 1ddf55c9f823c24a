"""The dashboard's sign-in: a token, checked once, kept in an HttpOnly cookie (which the browser
also sends with the live stream, where a page cannot set headers)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from monitor.api.deps import SessionDep
from monitor.auth import COOKIE, authenticate, raw_token, required, unauthorized

router = APIRouter(prefix="/session", tags=["session"])


class SessionLogin(BaseModel):
    token: str = Field(min_length=1, max_length=200)


class SessionPublic(BaseModel):
    auth: str = Field(description="open (no token needed) or required")
    signed_in: bool
    scope: str | None = None
    project: str | None = None


@router.get("", response_model=SessionPublic)
def read_session(request: Request, session: SessionDep) -> SessionPublic:
    """Whether this server needs a token, and whose this browser's is."""
    if not required(request.app.state.settings):
        return SessionPublic(auth="open", signed_in=True, scope="admin", project="*")
    raw = raw_token(request)
    who = authenticate(session, raw) if raw else None
    if who is None:
        return SessionPublic(auth="required", signed_in=False)
    return SessionPublic(auth="required", signed_in=True, scope=who.scope, project=who.project)


@router.post("", response_model=SessionPublic)
def sign_in(request: Request, response: Response, session: SessionDep,
            body: SessionLogin) -> SessionPublic:
    """Check a token and keep it in this browser (an HttpOnly, SameSite=Strict cookie)."""
    who = authenticate(session, body.token)
    if who is None:
        raise unauthorized("the token is not valid (unknown, malformed or revoked)")
    response.set_cookie(COOKIE, body.token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", max_age=30 * 86400)
    return SessionPublic(auth="required" if required(request.app.state.settings) else "open",
                         signed_in=True, scope=who.scope, project=who.project)


@router.delete("", status_code=204)
def sign_out(response: Response) -> Response:
    response.delete_cookie(COOKIE)
    response.status_code = 204
    return response
