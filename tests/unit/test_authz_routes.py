"""Who may call which API route, read from the routes themselves (no server process, no database).

Every API route states the least role it needs as a dependency (``Depends(require(Role.read))``,
``Depends(public)``: monitor/api/deps.py); nothing is decided from the URL's text. These tests
walk the app's routes and refuse one that states no role (it would be open to any token, or,
worse, to none), check the declarations against the access matrix written out below, and call
each route's own dependency as each role to see the answer a user would get: allowed, or the
403 and its words. tests/test_adversarial_authz.py checks the same matrix over HTTP, against a
real server, with real tokens, across projects.
"""

from __future__ import annotations

import dataclasses

import pytest
from fastapi import FastAPI, HTTPException
from starlette.requests import Request

from monitor import auth
from monitor.api.deps import api_routes, public_paths
from monitor.app import create_app
from monitor.auth import ALL_PROJECTS, OPEN, Principal, Role
from monitor.models import ApiToken
from monitor.settings import Settings

ANYONE = "anyone, no token"
READ_UP = (Role.read, Role.ingest, Role.admin)  # reading; the dashboard's buttons (ack, silence)
WRITERS = (Role.ingest, Role.admin)             # writing to a run
ADMINS = (Role.admin,)                          # webhooks

# (method, path) -> the roles that may call it, or ANYONE for a public route.
MATRIX: dict[tuple[str, str], tuple[Role, ...] | str] = {
    ("GET", "/api/v1/health"): ANYONE,
    ("GET", "/api/v1/session"): ANYONE,
    ("POST", "/api/v1/session"): ANYONE,
    ("DELETE", "/api/v1/session"): ANYONE,
    ("GET", "/api/v1/runs"): READ_UP,
    ("POST", "/api/v1/runs"): WRITERS,
    ("GET", "/api/v1/runs/{run_id}"): READ_UP,
    ("POST", "/api/v1/runs/{run_id}/finish"): WRITERS,
    ("POST", "/api/v1/runs/{run_id}/points"): WRITERS,
    ("GET", "/api/v1/runs/{run_id}/series"): READ_UP,
    ("POST", "/api/v1/runs/{run_id}/samples"): WRITERS,
    ("GET", "/api/v1/runs/{run_id}/samples"): READ_UP,
    ("GET", "/api/v1/runs/{run_id}/samples/{sample_id}"): READ_UP,
    ("GET", "/api/v1/runs/{run_id}/events"): READ_UP,
    ("GET", "/api/v1/alerts"): READ_UP,
    ("GET", "/api/v1/alerts/{alert_id}"): READ_UP,
    ("POST", "/api/v1/alerts/{alert_id}/ack"): READ_UP,
    ("GET", "/api/v1/alert-events"): READ_UP,
    ("GET", "/api/v1/rules"): READ_UP,
    ("GET", "/api/v1/runs/{run_id}/rules"): READ_UP,
    ("PATCH", "/api/v1/runs/{run_id}/rules"): WRITERS,
    ("POST", "/api/v1/runs/{run_id}/rules/{rule}/silence"): READ_UP,
    ("DELETE", "/api/v1/runs/{run_id}/rules/{rule}/silence"): READ_UP,
    ("POST", "/api/v1/webhooks"): ADMINS,
    ("GET", "/api/v1/webhooks"): ADMINS,
    ("GET", "/api/v1/webhooks/{webhook_id}"): ADMINS,
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): ADMINS,
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): ADMINS,
    ("POST", "/api/v1/webhooks/{webhook_id}/test"): ADMINS,
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): ADMINS,
}
# The 403 a role below the route's gets, by the least role the route needs.
REFUSED = {Role.ingest: "a read token cannot write; use an ingest token",
           Role.admin: "webhooks need an admin token"}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(Settings(auth="required"))


def api_route_table(app: FastAPI) -> dict[tuple[str, str], list]:
    """(method, path) -> the requirement dependencies of every route under /api."""
    table = {}
    for route in api_routes(app.routes):
        if route.path.startswith("/api"):
            for method in route.methods:
                table[(method, route.path)] = [
                    dep.call for dep in route.dependant.dependencies
                    if hasattr(dep.call, "requirement")]
    return table


def undeclared(app: FastAPI) -> list[str]:
    """The API routes that state no role, or more than one."""
    return sorted(f"{method} {path} ({len(deps)} stated)"
                  for (method, path), deps in api_route_table(app).items() if len(deps) != 1)


def test_every_api_route_states_the_role_it_needs(app):
    assert undeclared(app) == []


def test_the_walk_sees_every_route_of_the_schema(app):
    """Not a walk that finds nothing, so passes: the routes it sees are the schema's."""
    schema = {(method.upper(), path) for path, item in app.openapi()["paths"].items()
              for method in item}
    assert set(api_route_table(app)) == schema


def test_a_route_that_states_no_role_is_caught():
    bare = FastAPI()

    @bare.get("/api/v1/forgotten")
    def forgotten() -> dict:
        return {}

    assert undeclared(bare) == ["GET /api/v1/forgotten (0 stated)"]


def declared(app: FastAPI) -> dict[tuple[str, str], tuple[Role, ...] | str]:
    """The matrix as the routes declare it: who may call each."""
    table = {}
    for key, deps in api_route_table(app).items():
        (needed,) = [dep.requirement.role for dep in deps]
        table[key] = ANYONE if needed is None else tuple(r for r in Role if r.covers(needed))
    return table


def test_the_routes_declare_the_access_matrix(app):
    assert declared(app) == MATRIX


def test_the_guard_lets_through_without_a_token_only_the_public_routes(app):
    assert public_paths(app.routes) == {path for (_, path), who in MATRIX.items()
                                        if who == ANYONE}


def request_as(app: FastAPI, method: str, path: str, who: Principal | None) -> Request:
    """A request to ``path`` as the guard hands it on: ``who`` already authenticated (None:
    no credentials). No path parameters: no run or alert to look up."""
    state = {} if who is None else {auth._IDENTITY: who}
    return Request({"type": "http", "method": method, "path": path, "headers": [],
                    "query_string": b"", "path_params": {}, "app": app, "state": state})


def call_route_dependency(app, method, path, who):
    """The route's own requirement dependency, called as FastAPI calls it: the principal it
    lets in, or the HTTPException it raises."""
    (dependency,) = api_route_table(app)[(method, path)]
    request = request_as(app, method, path, who)
    try:
        if dependency.requirement.role is None:
            return dependency()
        return dependency(request, session=None)  # no run or alert id: no query is made
    except HTTPException as exc:
        return exc


@pytest.mark.parametrize("role", list(Role))
def test_each_role_is_let_in_or_refused_as_the_matrix_says(app, role):
    who = Principal(role=role, project=ALL_PROJECTS if role is Role.admin else "alpha", token_id=7,
                    token_name=f"the {role.value} token")
    for (method, path), allowed in MATRIX.items():
        answer = call_route_dependency(app, method, path, who)
        if allowed == ANYONE:
            assert answer is None, (method, path)
        elif role in allowed:
            assert answer == who, (method, path, answer)
        else:
            needed = min(allowed, key=list(Role).index)
            assert isinstance(answer, HTTPException), (method, path, answer)
            assert (answer.status_code, answer.detail) == (403, REFUSED[needed]), (method, path)


def test_without_a_token_only_the_public_routes_answer(app):
    for (method, path), allowed in MATRIX.items():
        answer = call_route_dependency(app, method, path, None)
        if allowed == ANYONE:
            assert answer is None
        else:
            assert isinstance(answer, HTTPException) and answer.status_code == 401, (method,
                                                                                    path)
            assert answer.detail == auth.NO_TOKEN


def test_an_open_server_lets_anyone_call_everything():
    open_app = create_app(Settings(auth="open"))
    for (method, path), allowed in MATRIX.items():
        answer = call_route_dependency(open_app, method, path, None)
        assert answer is (None if allowed == ANYONE else OPEN), (method, path, answer)


def test_the_principal_is_a_typed_value():
    who = Principal(role=Role.read, project="alpha", token_id=3, token_name="dashboard")
    assert not who.admin and who.sees("alpha") and not who.sees("beta")
    assert who.only_project == "alpha" and OPEN.only_project is None and OPEN.admin
    with pytest.raises(dataclasses.FrozenInstanceError):
        who.role = Role.admin  # type: ignore[misc]


def test_a_stored_scope_the_server_does_not_know_is_no_principal():
    """Refused (a 401, as for a bad token), never read as some role it might resemble."""
    known = ApiToken(id=4, name="trainer", project="alpha", scope="ingest")
    assert Principal.of_token(known) == Principal(role=Role.ingest, project="alpha",
                                                  token_id=4, token_name="trainer")
    assert Principal.of_token(ApiToken(id=5, name="", project="alpha", scope="owner")) is None
