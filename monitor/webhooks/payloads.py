"""What a delivery says, in three formats: ``generic`` (versioned JSON shaped like
Alertmanager's webhook), ``slack`` and ``discord`` (their incoming-webhook bodies). All carry
the same facts: the run, the rule, severity, what was seen, at which step, and what to try."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

VERSION = "1"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt for an alert still firing
COLOURS = {"critical": 0xD62728, "warning": 0xFF7F0E, "resolved": 0x2CA02C, "test": 0x1F77B4}
FORMATS = ("generic", "slack", "discord")


def _iso(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else ZERO_TIME


def facts(*, kind: str, alert, run, step: int, base_url: str) -> dict[str, Any]:
    """The facts every format renders, from the alert as it is at the transition."""
    status = "resolved" if kind == "resolved" else "firing"
    return {
        "kind": kind, "status": status, "rule": alert.rule, "subject": alert.subject,
        "severity": alert.severity, "title": alert.title, "message": alert.message,
        "action": alert.action, "fingerprint": alert.fingerprint, "alert_id": alert.id,
        "run_id": run.id, "run_name": run.name, "step": step,
        "value": alert.value, "threshold": alert.threshold, "evidence": alert.evidence or {},
        "starts_at": _iso(alert.fired_at or alert.created_at),
        "ends_at": _iso(alert.resolved_at) if status == "resolved" else ZERO_TIME,
        "url": f"{base_url}/runs/{run.id}#alert-{alert.id}", "base_url": base_url,
    }


def generic(f: dict, receiver: str) -> dict:
    labels = {"alertname": f["rule"], "severity": f["severity"], "run_id": f["run_id"],
              "run_name": f["run_name"]}
    if f["subject"]:
        labels["subject"] = f["subject"]
    annotations = {"summary": f["title"], "description": f["message"], "action": f["action"]}
    return {
        "version": VERSION, "receiver": receiver, "status": f["status"], "event": f["kind"],
        "groupKey": f["fingerprint"], "externalURL": f["base_url"],
        "commonLabels": labels, "commonAnnotations": annotations,
        "alerts": [{
            "status": f["status"], "labels": labels, "annotations": annotations,
            "startsAt": f["starts_at"], "endsAt": f["ends_at"], "generatorURL": f["url"],
            "fingerprint": f["fingerprint"], "step": f["step"], "value": f["value"],
            "threshold": f["threshold"], "evidence": f["evidence"],
        }],
    }


def _headline(f: dict) -> str:
    what = {"firing": "FIRING", "escalated": "ESCALATED", "resolved": "RESOLVED",
            "test": "TEST"}[f["kind"]]
    return f"[{what}] {f['title']} in run {f['run_name']} at step {f['step']}"


def slack(f: dict) -> dict:
    text = f"{_headline(f)}: {f['message']}"
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _headline(f)[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f["message"][:2900]},
             "fields": [{"type": "mrkdwn", "text": f"*Severity*\n{f['severity']}"},
                        {"type": "mrkdwn", "text": f"*Rule*\n{f['rule']}"},
                        {"type": "mrkdwn", "text": f"*Run*\n<{f['url']}|{f['run_name']}>"},
                        {"type": "mrkdwn", "text": f"*Step*\n{f['step']}"}]},
            {"type": "section", "text": {"type": "mrkdwn",
                                         "text": f"*What to try:* {f['action']}"[:2900]}},
        ],
    }


def discord(f: dict) -> dict:
    colour = COLOURS["resolved" if f["status"] == "resolved" else
                     "test" if f["kind"] == "test" else f["severity"]]
    return {
        "content": _headline(f)[:2000],
        "embeds": [{
            "title": f"{f['title']} ({f['rule']})"[:256], "url": f["url"],
            "description": f["message"][:4096], "color": colour,
            "fields": [{"name": "Severity", "value": f["severity"], "inline": True},
                       {"name": "Run", "value": f["run_name"][:1024], "inline": True},
                       {"name": "Step", "value": str(f["step"]), "inline": True},
                       {"name": "What to try", "value": f["action"][:1024]}],
            "timestamp": f["ends_at"] if f["status"] == "resolved" else f["starts_at"],
        }],
    }


def _finite(value):
    """JSON has no NaN/Infinity: such numbers are written as the API writes them, as strings."""
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def render(fmt: str, f: dict, receiver: str) -> str:
    body = generic(f, receiver) if fmt == "generic" else slack(f) if fmt == "slack" \
        else discord(f)
    return json.dumps(_finite(body), allow_nan=False, default=str)
