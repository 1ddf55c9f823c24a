"""Typed dependency aliases, so a handler reads ``def read_run(session: SessionDep, ...)``, and
the dependencies by which every API route states who may call it:

    @router.get("/runs", dependencies=[Depends(require(Role.read))])
    @router.post("/runs", dependencies=[Depends(require(Role.ingest))])
    router = APIRouter(prefix="/webhooks", dependencies=[Depends(require(Role.admin))])
    @router.get("/health", dependencies=[Depends(public)])

The role is the least one allowed (monitor/auth.py ``Role``); tests/unit/test_authz_routes.py
refuses an API route that states none, so a new route cannot default to open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from monitor.auth import PUBLIC, Principal, Requirement, Role, authorize
from monitor.settings import Settings
from monitor.webhooks.outbox import Handoff


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessionmaker() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_handoff(request: Request) -> Handoff:
    return request.app.state.handoff


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
HandoffDep = Annotated[Handoff, Depends(get_handoff)]

_REQUIREMENT = "requirement"  # the attribute of a dependency that states a route's access


def require(role: Role, refusal: str = "") -> Callable[..., Principal]:
    """The dependency of a route that ``role`` (or any role above it) may call: it authorizes
    the request (401, 403, or 404 for another project's run or alert) and keeps its principal
    for ``PrincipalDep``. ``refusal``: the 403's words, where the role's own do not fit."""
    needed = Requirement(role=role, refusal=refusal)

    def principal(request: Request, session: SessionDep) -> Principal:
        who = authorize(request, session, needed)
        request.state.principal = who
        return who

    setattr(principal, _REQUIREMENT, needed)
    return principal


def public() -> None:
    """The dependency of a route anyone may call, without a token (the health check, the
    dashboard's sign-in, which checks the token it is given itself)."""


setattr(public, _REQUIREMENT, PUBLIC)


def api_routes(routes: Iterable) -> Iterator:
    """The app's API routes, each as included (full path, its routers' dependencies too):
    what FastAPI >= 0.16x keeps behind included routers, or older ones list flat."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # an older FastAPI: included routes are plain APIRoutes
        yield from (route for route in routes if isinstance(route, APIRoute))
        return
    for context in iter_route_contexts(list(routes)):
        if isinstance(context.original_route, APIRoute):
            yield context


def requirements(route) -> list[Requirement]:
    """The access requirements a route (from ``api_routes``) declares, its routers' too."""
    return [getattr(dep.call, _REQUIREMENT) for dep in route.dependant.dependencies
            if hasattr(dep.call, _REQUIREMENT)]


def public_paths(routes: Iterable) -> frozenset[str]:
    """The paths of the routes declared public, for the guard, which runs before routing:
    exact paths, so a public route may not have path parameters."""
    paths = set()
    for route in api_routes(routes):
        if PUBLIC in requirements(route):
            if route.param_convertors:
                raise ValueError(f"a public route has no path parameters: {route.path}")
            paths.add(route.path)
    return frozenset(paths)


def get_principal(request: Request) -> Principal:
    """The principal that the route's ``require`` dependency (solved first) let in."""
    return request.state.principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
