"""Evaluation as a pure function: from a window, the rule states and the params, to a list of
transitions. No database, no session, no webhooks: the caller (``monitor.ingest``) reads the
window and the states, and applies what comes back to its alerts and its outbox.

``evaluate`` runs the point rules once at ``window.step``: each rule that is not silenced,
not inhibited (by a firing non-finite alert) and due (its cadence), for each of its subjects,
then one lifecycle step (``lifecycle.advance``) of every fingerprint whose condition holds or
that has a state already. A rule that raises becomes a ``rule_error`` transition of its own
(subject: the rule's name), never an exception out of here.

The states passed in are never changed: each transition carries the fingerprint's new state.
A caller evaluating several steps in a row carries them over with ``carry``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from monitor.rules import families
from monitor.rules.core import Finding, Window
from monitor.rules.library import INHIBITED_BY_NON_FINITE, POINT_RULES, RULES, stalled
from monitor.rules.lifecycle import Change, State, advance

log = logging.getLogger("ganwatch.rules")

# A batch spanning many steps is evaluated at up to this many evenly spaced steps (always its
# last): a replayed run of a million steps costs a bounded amount per request; holds (``for``,
# ``clear_for``) are measured in steps, so the spacing only delays a transition by at most one
# stride.
MAX_EVALUATIONS = 16

Key = tuple[str, str]  # (rule, subject): a fingerprint within one run


@dataclass(frozen=True)
class Transition:
    """One lifecycle step of a fingerprint at ``step``: what held (``finding``, None when the
    condition was clear), the fingerprint's state after it, and what changed."""

    rule: str
    subject: str
    step: int
    finding: Finding | None
    state: State
    change: Change

    @property
    def key(self) -> Key:
        return self.rule, self.subject


def evaluation_steps(steps: list[int], limit: int = MAX_EVALUATIONS) -> list[int]:
    """At most ``limit`` of the (sorted, distinct) steps, evenly spaced, always the last."""
    if len(steps) <= limit:
        return steps
    stride = len(steps) / limit
    picked = {steps[min(len(steps) - 1, int(round((i + 1) * stride)) - 1)] for i in range(limit)}
    picked.add(steps[-1])
    return sorted(picked)


def cadence(params: dict) -> int:
    """Steps between two evaluations of a rule with these params (at least 1)."""
    return max(1, int(params["every"]) or int(params.get("window", 1)) // 20)


def window_spans(params: Mapping[str, dict], silenced: Iterable[str] = ()) -> dict[str, int]:
    """Series key (or prefix ending in "/") -> how many steps back the active point rules
    read it, so a caller reads only that much of each series."""
    silenced = set(silenced)
    spans: dict[str, int] = {}
    for name in POINT_RULES:
        if name in silenced:
            continue
        p = params[name]
        keys = set(RULES[name].inputs) | {  # series a run's settings point a rule to
            v for k, v in p.items() if k == "key" or k.endswith("_key")}
        for key in keys:
            spans[key] = max(spans.get(key, 0), int(p["window"]))
    return spans


def carry(states: Mapping[Key, State], transitions: Iterable[Transition]) -> dict[Key, State]:
    """The states after the transitions (a new mapping; ``states`` is left as it was)."""
    out = dict(states)
    out.update((t.key, t.state) for t in transitions)
    return out


def applies(name: str, family: str) -> bool:
    """Whether the rule means something for a run of this loss family."""
    declared = RULES[name].families
    return declared is None or family in declared


def evaluate(window: Window, states: Mapping[Key, State], params: Mapping[str, dict], *,
             silenced: Iterable[str] = (), final: bool = True,
             family: str = families.DEFAULT) -> list[Transition]:
    """The point rules at ``window.step``, in rule order. ``final``: the last step of what the
    caller evaluates now, where every active rule is evaluated whatever its cadence. A rule
    that does not apply to the run's loss ``family`` is not evaluated, and its open alerts
    (raised before the family was known) clear."""
    silenced = frozenset(silenced)
    states = dict(states)  # this evaluation's view; the caller's mapping is not changed
    out: list[Transition] = []
    t, previous = window.step, window.previous_step
    inhibited = _status(states, "non_finite", "") == "firing"
    for name in POINT_RULES:
        if not applies(name, family):
            open_ = [s for (r, s), st in states.items()
                     if r == name and st.status in ("pending", "firing")]
            out += [step(states, name, subject, None, t, params) for subject in open_]
            continue
        if name in silenced or (inhibited and name in INHIBITED_BY_NON_FINITE):
            continue
        every = cadence(params[name])
        if every > 1 and not final and t // every == previous // every:
            continue  # not due: evaluated at least once per `every` steps, and last
        out += _evaluate_rule(name, window, states, params, silenced)
    if _status(states, "stalled", "") == "firing":  # points arrived: not stalled any more
        out.append(step(states, "stalled", "", None, t, params))
    return out


def check_stalled(window: Window, states: Mapping[Key, State],
                  params: Mapping[str, dict]) -> list[Transition]:
    """The stalled rule on the clock (``window.silent_for``): a transition when it newly
    holds, none while it is firing already or the run is not silent."""
    finding = stalled(window, params["stalled"])
    if finding is None or _status(states, "stalled", "") == "firing":
        return []
    return [step(dict(states), "stalled", "", finding, window.step, params)]


def resolve_stalled(states: Mapping[Key, State], t: int,
                    params: Mapping[str, dict]) -> list[Transition]:
    """A run that finished is not stalled: its stalled alert, if firing, resolves."""
    if _status(states, "stalled", "") != "firing":
        return []
    return [step(dict(states), "stalled", "", None, t, params)]


def failed(name: str, exc: BaseException, t: int, states: Mapping[Key, State],
           params: Mapping[str, dict], *, silenced: Iterable[str] = (),
           run_id: str = "") -> list[Transition]:
    """A rule (or, with ``name`` "", the evaluation as a whole) raised: a ``rule_error``
    alert (its subject the rule's name) holds, naming the rule and the error, instead of the
    rule going quiet with a line in a log."""
    log.warning("rule %s of run %s failed at step %s: %s: %s", name, run_id, t,
                type(exc).__name__, exc)
    if "rule_error" in set(silenced):
        return []
    error = f"{type(exc).__name__}: {exc}"[:500]
    where = f"rule {name}" if name else "the rules"
    finding = Finding(
        message=f"{where} failed to evaluate at step {t} ({error}); until it evaluates "
                "again it raises no alert" + (f" (its parameters: {params[name]})"
                                              if name in params else ""),
        value=math.nan, threshold=math.nan,
        evidence={"rule": name, "error": error, "step": t, "params": params.get(name, {})})
    return [step(dict(states), "rule_error", name, finding, t, params)]


def worked(name: str, t: int, states: Mapping[Key, State],
           params: Mapping[str, dict]) -> list[Transition]:
    """The rule (or, with ``name`` "", the evaluation as a whole) evaluated: its rule_error
    alert, if one is open, resolves."""
    if _status(states, "rule_error", name) not in ("pending", "firing"):
        return []
    return [step(dict(states), "rule_error", name, None, t, params)]


def step(states: dict[Key, State], rule: str, subject: str, finding: Finding | None, t: int,
         params: Mapping[str, dict]) -> Transition:
    """One lifecycle step of a fingerprint; ``states`` (the caller's working copy) gets the
    new state, a copy: the state it held before is not changed."""
    state = replace(states.get((rule, subject)) or State())
    change = advance(state, finding, t, params[rule])
    states[rule, subject] = state
    return Transition(rule, subject, t, finding, state, change)


def _status(states: Mapping[Key, State], rule: str, subject: str) -> str:
    state = states.get((rule, subject))
    return state.status if state is not None else "inactive"


def _evaluate_rule(name: str, window: Window, states: dict[Key, State],
                   params: Mapping[str, dict], silenced: frozenset[str]) -> list[Transition]:
    rule, p = RULES[name], params[name]
    t = window.step
    if rule.subjects is None:
        subjects = [""]
    else:
        try:
            found = set(rule.subjects(window))
        except Exception as exc:
            return _record(states, failed(name, exc, t, states, params, silenced=silenced,
                                          run_id=window.run_id))
        found.update(s for (r, s), state in states.items()
                     if r == name and state.status in ("pending", "firing"))
        subjects = sorted(found)
    out: list[Transition] = []
    for subject in subjects:
        finding = None
        if t >= int(p["warmup"]):
            try:
                finding = rule.check(window.for_subject(subject), p)
            except Exception as exc:  # the rule watches nothing: say so, as an alert
                return out + _record(states, failed(name, exc, t, states, params,
                                                    silenced=silenced, run_id=window.run_id))
        if finding is None and (name, subject) not in states:
            continue  # inactive and still clear: nothing to store
        out.append(step(states, name, subject, finding, t, params))
    return out + _record(states, worked(name, t, states, params))


def _record(states: dict[Key, State], transitions: list[Transition]) -> list[Transition]:
    states.update((t.key, t.state) for t in transitions)
    return transitions


# -- what a run's rules can see ------------------------------------------------------------

def _input_key(rule_name: str, wanted: str, p: Mapping) -> str:
    """The series a rule reads for one of its inputs: a run that pointed the rule's key
    parameter elsewhere (``{"d_loss_zero": {"key": "my_d"}}``) is read there."""
    for name, (default, *_rest) in RULES[rule_name].params.items():
        if (name == "key" or name.endswith("_key")) and default == wanted:
            return p.get(name, wanted)
    return wanted


def _logged(key: str, roles: Mapping[str, str], keys: set[str]) -> bool:
    if key.endswith("/"):
        return any(k.startswith(key) for k in keys)
    return roles.get(key, key) in keys


def coverage(params: Mapping[str, dict], roles: Mapping[str, str], keys: Iterable[str],
             family: str, *, silenced: Iterable[str] = ()) -> dict[str, dict]:
    """For each point rule: whether it applies to the run's loss family, whether it is
    watching (applies, is not silenced, and the run logs what it needs, under a role's name,
    an alias or its own), and what it misses. A rule that watches nothing is never quiet
    about it: the run page, replay and GET /runs/{id}/rules say so."""
    silenced = set(silenced)
    logged = set(keys)
    out: dict[str, dict] = {}
    for name in POINT_RULES:
        rule, p = RULES[name], params[name]
        groups = rule.needs if rule.needs is not None else tuple((i,) for i in rule.inputs)
        groups += tuple((wanted,) for param, wanted in rule.needs_when if p.get(param))
        missing = [" or ".join(group) for group in groups
                   if not any(_logged(_input_key(name, i, p), roles, logged) for i in group)]
        fits = applies(name, family)
        out[name] = {"applies": fits, "silenced": name in silenced, "missing": missing,
                     "watching": fits and name not in silenced and not missing}
    return out
