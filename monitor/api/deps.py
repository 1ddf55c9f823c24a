"""Typed dependency aliases, so a handler reads ``def read_run(session: SessionDep, ...)``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from monitor.settings import Settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessionmaker() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[Session, Depends(get_session)]

OPEN_PATHS = ("/api/v1/health", "/api/v1/session")


def authorize(request: Request, session: SessionDep) -> None:
    """Every API route's gate (monitor/auth.py): sets ``request.state.principal``."""
    from monitor.auth import OPEN, principal_for

    if request.url.path in OPEN_PATHS:  # they read no principal (the session route checks
        request.state.principal = OPEN  # its token itself)
        return
    request.state.principal = principal_for(request, session)


def get_principal(request: Request):
    return request.state.principal


PrincipalDep = Annotated[object, Depends(get_principal)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
