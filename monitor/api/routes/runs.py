from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from monitor import ingest
from monitor.api.deps import HandoffDep, PrincipalDep, SessionDep, require
from monitor.auth import Role, forbidden
from monitor.errors import RunIdTaken
from monitor.models import Run
from monitor.schemas import ErrorPublic, RunCreate, RunPublic, RunsPublic
from monitor.store import alerts as alert_store
from monitor.store import runs as run_store

router = APIRouter(prefix="/runs", tags=["runs"])


def run_public(run: Run, keys: list[str], health: tuple[str, int, bool]) -> RunPublic:
    level, open_alerts, stalled = health
    family, source = ingest.family_of(run)
    if level == "ok" and keys and not ingest.any_gan_rule_watching(run, keys):
        level = "unwatched"
    return RunPublic(
        id=run.id, name=run.name, project=run.project, config=run.config or {},
        status="stalled" if stalled and run.status == "running" else run.status,
        created_at=run.created_at, updated_at=run.updated_at, finished_at=run.finished_at,
        last_step=run.last_step, series_keys=keys, url=f"/runs/{run.id}", health=level,
        open_alerts=open_alerts, checkin_interval=run.checkin_interval,
        last_point_at=run.last_point_at, loss=family, loss_source=source,
        roles=ingest.run_roles(run, keys),
    )


def one_run(session, run: Run) -> RunPublic:
    return run_public(run, run_store.series_keys(session=session, run_ids=[run.id])[run.id],
                      alert_store.run_health(session=session, run_ids=[run.id])[run.id])


@router.post("", response_model=RunPublic, status_code=status.HTTP_201_CREATED,
             responses={200: {"model": RunPublic, "description": "An existing run, resumed"},
                        409: {"model": ErrorPublic,
                              "description": "The id is taken by a run of another project"}},
             dependencies=[Depends(require(Role.ingest))])
def create_run(session: SessionDep, principal: PrincipalDep, run_create: RunCreate,
               response: Response) -> RunPublic:
    """Create a run, or resume one: by its id, or (with `resume`) the newest run of that name.
    The run belongs to the token's project (an open server or an admin token: `project`, by
    default "default"); the id of another project's run is refused (409) and changes nothing."""
    project = run_create.project or "default"
    if principal.only_project is not None:
        if run_create.project not in (None, principal.project):
            raise forbidden(f"this token writes to project {principal.project!r}, not "
                            f"{run_create.project!r}")
        project = principal.project
    try:
        run, created = run_store.create_or_resume_run(session=session, run_create=run_create,
                                                      project=project)
    except RunIdTaken as taken:
        # Refused before anything changed. Run ids are one namespace, so "taken" cannot be
        # hidden from whoever tries to create the id; the answer names neither the project nor
        # anything of the run (an admin, who sees every project, is told the project).
        detail = (f"run id {taken.run_id!r} is already taken: leave the id out (the server "
                  "makes one) or choose another")
        if principal.admin:
            detail += (f"; it is a run of project {taken.project!r} (send \"project\": "
                       f"\"{taken.project}\" to resume it)")
        raise HTTPException(status.HTTP_409_CONFLICT, detail) from None
    if not created:
        response.status_code = status.HTTP_200_OK
    return one_run(session, run)


@router.get("", response_model=RunsPublic, dependencies=[Depends(require(Role.read))])
def list_runs(
    session: SessionDep,
    principal: PrincipalDep,
    name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> RunsPublic:
    """Runs, newest first."""
    runs, count = run_store.list_runs(session=session, name=name, limit=limit, offset=offset,
                                      project=principal.only_project)
    ids = [r.id for r in runs]
    keys = run_store.series_keys(session=session, run_ids=ids)
    health = alert_store.run_health(session=session, run_ids=ids)
    return RunsPublic(data=[run_public(r, keys[r.id], health[r.id]) for r in runs], count=count)


@router.get("/{run_id}", response_model=RunPublic, dependencies=[Depends(require(Role.read))])
def read_run(session: SessionDep, run_id: str) -> RunPublic:
    """One run, with the keys of its series."""
    return one_run(session, run_store.get_run(session=session, run_id=run_id))


@router.post("/{run_id}/finish", response_model=RunPublic,
             dependencies=[Depends(require(Role.ingest))])
def finish_run(session: SessionDep, handoff: HandoffDep, run_id: str) -> RunPublic:
    """Mark a run finished (the client does this at exit); finishing twice is harmless."""
    return one_run(session, ingest.finish_run(session=session, run_id=run_id, handoff=handoff))
