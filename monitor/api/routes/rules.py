from fastapi import APIRouter, Depends

from monitor import ingest
from monitor.api.deps import SessionDep, require
from monitor.auth import Role
from monitor.models import Run
from monitor.rules import RULES
from monitor.schemas import RulePublic, RunRules, RunRulesUpdate
from monitor.store import runs as run_store

router = APIRouter(tags=["rules"])


def run_rules(session, run: Run) -> RunRules:
    keys = run_store.series_keys(session=session, run_ids=[run.id])[run.id]
    family, source = ingest.family_of(run)
    return RunRules(run_id=run.id, params=ingest.run_params(run, family),
                    overrides=run.rules or {}, silenced=run.silenced or [], loss=family,
                    loss_source=source, roles=ingest.run_roles(run, keys),
                    rules=ingest.run_coverage(run, keys))


@router.get("/rules", response_model=list[RulePublic], dependencies=[Depends(require(Role.read))])
def list_rules() -> list[RulePublic]:
    """Every rule, the folklore it encodes, its parameters with their defaults, and the action
    its alerts recommend."""
    return [RulePublic(name=r.name, title=r.title, sign=r.sign, action=r.action,
                       params=r.documented_params()) for r in RULES.values()]


@router.get("/runs/{run_id}/rules", response_model=RunRules,
            dependencies=[Depends(require(Role.read))])
def read_run_rules(session: SessionDep, run_id: str) -> RunRules:
    """The run's effective rule parameters, its overrides, and its silenced rules."""
    return run_rules(session, run_store.get_run(session=session, run_id=run_id))


@router.patch("/runs/{run_id}/rules", response_model=RunRules,
              dependencies=[Depends(require(Role.ingest))])
def update_run_rules(session: SessionDep, run_id: str, body: RunRulesUpdate) -> RunRules:
    """Change the run's rule parameters or silence rules, from the next evaluation on."""
    return run_rules(session, run_store.update_run_rules(session=session, run_id=run_id,
                                                changes=body.rules))


# a read token may silence and unsilence: what the dashboard's buttons do
@router.post("/runs/{run_id}/rules/{rule}/silence", response_model=RunRules,
             dependencies=[Depends(require(Role.read))])
def silence_rule(session: SessionDep, run_id: str, rule: str) -> RunRules:
    """Stop evaluating a rule for this run (its open alert stays as it is)."""
    return run_rules(session, run_store.update_run_rules(session=session, run_id=run_id,
                                                changes={rule: False}))


@router.delete("/runs/{run_id}/rules/{rule}/silence", response_model=RunRules,
               dependencies=[Depends(require(Role.read))])
def unsilence_rule(session: SessionDep, run_id: str, rule: str) -> RunRules:
    return run_rules(session, run_store.update_run_rules(session=session, run_id=run_id,
                                                changes={rule: True}))
