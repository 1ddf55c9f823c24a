"""The client's wire format: every API path it calls and every request body it sends.

The sender, ``init()``'s look-up of a run to continue, and ``ganwatch replay`` build their
requests here, so a change to the server's API is a change to this one module. The server's
side of the same contract is monitor/schemas.py.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping

from trainer_client.spool import Message

RUNS = "/api/v1/runs"
ALERTS = "/api/v1/alerts"
HEALTH = "/api/v1/health"


def api_path(path: str) -> str:
    """A path under the API's root (``/webhooks/3/test`` -> ``/api/v1/webhooks/3/test``), for
    the command line's calls that are not the client's own (ganwatch webhook)."""
    return "/api/v1" + path

JSON = {"Content-Type": "application/json"}
GZIP_JSON = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
PNG = {"Content-Type": "image/png"}


def run_path(run_id: str) -> str:
    """``GET`` it for the run as the server has it (its ``last_step`` among the rest)."""
    return f"{RUNS}/{run_id}"


def rules_path(run_id: str) -> str:
    """``GET`` it for the run's rules: parameters, loss family, roles, and per rule whether
    it is watching (``{"rules": {name: {"watching": ..., "missing": [...]}}}``)."""
    return f"{RUNS}/{run_id}/rules"


def alerts_path(run_id: str, limit: int = 1000) -> str:
    """``GET`` it for the run's alerts, ``{"data": [...]}``."""
    return f"{ALERTS}?run_id={run_id}&limit={limit}"


def run_body(run_id: str, name: str, config: dict, rules: dict | None = None,
             checkin_interval: float | None = None, loss: str | None = None,
             keys: dict | None = None) -> dict:
    """The body that creates a run (or, with an id the server knows, continues it): rule
    settings, the check-in interval, the loss family and the keys of the rules' roles only
    when given."""
    body = {"id": run_id, "name": name, "config": config}
    if rules:
        body["rules"] = dict(rules)
    if checkin_interval:
        body["checkin_interval"] = checkin_interval
    if loss:
        body["loss"] = str(loss)
    if keys:
        body["keys"] = {str(role): str(key) for role, key in dict(keys).items()}
    return body


def create_run(body: dict) -> Message:
    return Message(method="POST", path=RUNS, headers=dict(JSON),
                   body=json.dumps(body, default=str).encode())


def is_create_run(message: Message) -> bool:
    return message.method == "POST" and message.path == RUNS


def create_run_without(message: Message, field: str) -> Message | None:
    """A run-create request without one of its fields (``"rules"``, ``"config"``), to send
    again when the server refused that field; None when the message is not a run-create
    request or has no such field."""
    if not is_create_run(message):
        return None
    try:
        body = json.loads(message.body)
    except ValueError:
        return None
    if not isinstance(body, dict) or not body.pop(field, None):
        return None
    return Message(method=message.method, path=message.path, body=json.dumps(body).encode(),
                   params=message.params, headers=message.headers, file=message.file)


def blames(locs: Iterable[tuple], field: str) -> bool:
    """Whether a 422's error locations (each error's ``loc``, e.g. ``("body", "config", "x")``)
    name this field of the request body."""
    return any(tuple(loc[:2]) == ("body", field) for loc in locs)


def points(run_id: str, batch_id: str, series: Mapping[str, tuple]) -> Message:
    """A batch of points, ``{key: (steps, values, wall_times)}`` (wall_times None: the server
    stamps the points with its own clock), gzip-compressed (level 1:
    cheap, it runs in the sender thread beside the training loop). The batch id, made by the
    client, lets the server store a batch that is sent again only once."""
    body = json.dumps({
        "batch_id": batch_id,
        "series": {k: {"steps": s, "values": v, "wall_times": t} if t is not None
                   else {"steps": s, "values": v} for k, (s, v, t) in series.items()},
    }).encode()  # NaN/Infinity are written as bare tokens, which the server accepts
    return Message(method="POST", path=f"{RUNS}/{run_id}/points",
                   body=gzip.compress(body, compresslevel=1), headers=dict(GZIP_JSON),
                   n_points=sum(len(c[0]) for c in series.values()))


def sample(run_id: str, batch_id: str, *, step: int, key: str, wall_time: float,
           png: bytes) -> Message:
    """A sample grid (PNG) at a step, under a key (``fake``, or what ``log_images`` names)."""
    return Message(method="POST", path=f"{RUNS}/{run_id}/samples", body=png,
                   params={"step": step, "key": key, "wall_time": wall_time,
                           "batch_id": batch_id},
                   headers=dict(PNG), n_samples=1)


def finish(run_id: str) -> Message:
    return Message(method="POST", path=f"{RUNS}/{run_id}/finish")
