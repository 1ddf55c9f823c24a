"""The errors queries raise for the API to answer (monitor/app.py maps them to 404 and 422);
shared by the store and the webhook registry, so a route never tells one module's NotFound
from another's."""

from __future__ import annotations


class NotFound(Exception):
    """The thing asked for does not exist; the message says which."""


class BadRequest(Exception):
    """A request that is well-formed JSON but asks for something invalid (422)."""


class RunIdTaken(Exception):
    """``POST /runs`` with the id of a run of another project: refused before anything changed.
    ``project`` is the run's, for a caller who may see it (an admin); the API's answer to a
    project's token does not name it (monitor/api/routes/runs.py)."""

    def __init__(self, run_id: str, project: str) -> None:
        super().__init__(run_id)
        self.run_id, self.project = run_id, project


def unknown_run(run_id: str) -> NotFound:
    """The 404 of a run that does not exist, and (monitor/auth.py) of a run of another project
    than the token's: the same words, so that no answer tells which ids exist elsewhere."""
    return NotFound(f"unknown run '{run_id}'")


def unknown_alert(alert_id: int) -> NotFound:
    """As ``unknown_run``, for alerts."""
    return NotFound(f"unknown alert {alert_id}")
