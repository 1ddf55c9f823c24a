"""Runs: create or resume, read, list, their series keys and their rule settings."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.errors import BadRequest, RunIdTaken, unknown_run
from monitor.models import Run, Series
from monitor.rules import families
from monitor.rules.config import validate_overrides
from monitor.schemas import RunCreate


def new_run_id() -> str:
    return secrets.token_hex(8)


def get_run(*, session: Session, run_id: str) -> Run:
    """The run with this id, or NotFound."""
    run = session.get(Run, run_id)
    if run is None:
        raise unknown_run(run_id)
    return run


def create_or_resume_run(*, session: Session, run_create: RunCreate,
                         project: str = "default") -> tuple[Run, bool]:
    """Create a run in ``project``, or return the existing one (by id, or by name with resume);
    True if created. An id that is another project's run raises RunIdTaken before anything is
    changed (a resumed run's rule settings and check-in interval are merged only after)."""
    existing = None
    if run_create.id is not None:
        existing = session.get(Run, run_create.id)
        if existing is not None and existing.project != project:
            session.rollback()
            raise RunIdTaken(existing.id, existing.project)
    elif run_create.resume:
        existing = session.scalars(
            select(Run).where(Run.name == run_create.name, Run.project == project)
            .order_by(Run.created_at.desc()).limit(1)
        ).first()
    if existing is not None:
        # A resumed run keeps its settings; those the client sends now are merged on top.
        loss = declared_loss(run_create)
        if run_create.rules or run_create.checkin_interval or loss or run_create.keys:
            _merge_rules(existing, run_create.rules)
            existing.checkin_interval = run_create.checkin_interval or existing.checkin_interval
            existing.loss = loss or existing.loss
            if run_create.keys:
                existing.key_map = {**(existing.key_map or {}), **run_create.keys}
            session.commit()
        return existing, False
    overrides, silenced = validate_overrides(run_create.rules)
    run = Run(id=run_create.id or new_run_id(), name=run_create.name, project=project,
              config=run_create.config,
              status="running", rules=overrides, silenced=silenced,
              checkin_interval=run_create.checkin_interval, loss=declared_loss(run_create),
              key_map=run_create.keys or None)
    session.add(run)
    try:
        session.commit()
    except IntegrityError:  # the same id created concurrently (a retried request): resume it
        session.rollback()
        existing = get_run(session=session, run_id=run_create.id or run.id)
        if existing.project != project:  # created meanwhile, in another project
            raise RunIdTaken(existing.id, existing.project) from None
        return existing, False
    return run, True


def declared_loss(run_create: RunCreate) -> str | None:
    """The loss family the client declared: ``loss``, else a ``loss`` (or ``loss_family``)
    entry of the config that names one (a config's "loss" may be anything else, too)."""
    if run_create.loss:
        return run_create.loss
    for name in ("loss", "loss_family", "gan_loss"):
        value = (run_create.config or {}).get(name)
        try:
            return families.canonical(value)
        except ValueError:
            continue
    return None


def list_runs(*, session: Session, name: str | None, limit: int, offset: int,
              project: str | None = None) -> tuple[list[Run], int]:
    """Runs, newest first, optionally only those with a given name (or in a project)."""
    query = select(Run)
    count_query = select(func.count()).select_from(Run)
    if project is not None:
        query = query.where(Run.project == project)
        count_query = count_query.where(Run.project == project)
    if name is not None:
        query = query.where(Run.name == name)
        count_query = count_query.where(Run.name == name)
    runs = session.scalars(query.order_by(Run.created_at.desc()).limit(limit).offset(offset)).all()
    return list(runs), session.scalar(count_query) or 0


def series_keys(*, session: Session, run_ids: list[str]) -> dict[str, list[str]]:
    """The series keys of each run, sorted."""
    keys: dict[str, list[str]] = {run_id: [] for run_id in run_ids}
    if run_ids:
        rows = session.execute(
            select(Series.run_id, Series.key).where(Series.run_id.in_(run_ids)).order_by(Series.key)
        )
        for run_id, key in rows:
            keys[run_id].append(key)
    return keys


def update_run_rules(*, session: Session, run_id: str, changes: dict) -> Run:
    """Merge rule settings into a run's: {"rule": {"param": value or None}}, {"rule": false}
    silences, {"rule": true} unsilences. Applies from the next evaluation on."""
    run = get_run(session=session, run_id=run_id)
    _merge_rules(run, changes)
    session.commit()
    return run


def _merge_rules(run: Run, changes: dict) -> None:
    resets = {rule: [k for k, v in params.items() if v is None]
              for rule, params in changes.items() if isinstance(params, dict)}
    clean_changes = {rule: ({k: v for k, v in params.items() if v is not None}
                            if isinstance(params, dict) else params)
                     for rule, params in changes.items()}
    try:
        overrides, silence = validate_overrides(clean_changes)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    merged = {rule: dict(params) for rule, params in (run.rules or {}).items()}
    for rule, names in resets.items():
        for name in names:
            merged.get(rule, {}).pop(name, None)
    for rule, params in overrides.items():
        merged.setdefault(rule, {}).update(params)
    silenced = set(run.silenced or [])
    silenced |= set(silence)
    silenced -= {rule for rule, value in changes.items() if value is True}
    run.rules = {rule: params for rule, params in merged.items() if params}
    run.silenced = sorted(silenced)
