"""What a delivery says, in three formats: ``generic`` (versioned JSON shaped like
Alertmanager's webhook), ``slack`` and ``discord`` (their incoming-webhook bodies). All carry
the same facts: the run, the rule, severity, what was seen, at which step, and what to try.

What users wrote (run names, series keys in messages) is escaped for the chat formats, so a
run named ``<!channel>`` or ``@everyone`` is shown, never obeyed: Slack's mrkdwn gets ``&``,
``<``, ``>`` as entities (no ``<!channel>``, ``<@U123>`` or ``<url|text>`` links of its own) in
text objects marked ``verbatim`` (no automatic links); Discord's markdown and mentions are
backslash-escaped, ``@`` is followed by a zero-width space, and every Discord body carries
``"allowed_mentions": {"parse": []}``, so nothing in it ever pings anyone."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from monitor.encoding import stored_safe

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


def _headline(f: dict, name: str | None = None) -> str:
    what = {"firing": "FIRING", "escalated": "ESCALATED", "resolved": "RESOLVED",
            "test": "TEST"}[f["kind"]]
    name = f["run_name"] if name is None else name
    return f"[{what}] {f['title']} in run {name} at step {f['step']}"


def _one_line(text) -> str:
    return " ".join(str(text).splitlines())


def slack_escape(text) -> str:
    """Text shown as itself in Slack mrkdwn: its three control characters as entities."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_DISCORD_MARKDOWN = re.compile(r"([\\*_~`|>\[\]()#:<-])")


def discord_escape(text) -> str:
    """Text shown as itself in Discord: markdown and mention syntax backslash-escaped, and
    ``@`` kept from starting a mention (``@everyone``, ``@here``) by a zero-width space."""
    return _DISCORD_MARKDOWN.sub(r"\\\1", str(text)).replace("@", "@\u200b")


def _cut(escaped: str, limit: int) -> str:
    """At most ``limit`` characters of escaped mrkdwn, never ending inside an entity (a cut
    ``&am`` would show as text, and a cut ``&lt`` as a stray ``&``)."""
    if len(escaped) <= limit:
        return escaped
    cut = escaped[:limit]
    amp = cut.rfind("&")
    return cut[:amp] if amp > cut.rfind(";") else cut


def _mrkdwn(text: str, limit: int = 2900) -> dict:
    return {"type": "mrkdwn", "text": _cut(text, limit), "verbatim": True}


def slack(f: dict) -> dict:
    name = slack_escape(_one_line(f["run_name"]))
    message, action = slack_escape(f["message"]), slack_escape(f["action"])
    headline = _headline(f, name)
    return {
        "text": f"{headline}: {message}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text",
                                        "text": _headline(f, _one_line(f["run_name"]))[:150]}},
            {"type": "section", "text": _mrkdwn(message),
             "fields": [_mrkdwn(f"*Severity*\n{slack_escape(f['severity'])}"),
                        _mrkdwn(f"*Rule*\n{slack_escape(f['rule'])}"),
                        _mrkdwn(f"*Run*\n<{slack_escape(f['url'])}|{name}>"),
                        _mrkdwn(f"*Step*\n{f['step']}")]},
            {"type": "section", "text": _mrkdwn(f"*What to try:* {action}")},
        ],
    }


def discord(f: dict) -> dict:
    colour = COLOURS["resolved" if f["status"] == "resolved" else
                     "test" if f["kind"] == "test" else f["severity"]]
    name = discord_escape(_one_line(f["run_name"]))
    return {
        "content": _headline(f, name)[:2000],
        "allowed_mentions": {"parse": []},  # whatever the text says, nobody is pinged
        "embeds": [{
            "title": f"{f['title']} ({f['rule']})"[:256], "url": f["url"],
            "description": discord_escape(f["message"])[:4096], "color": colour,
            "fields": [{"name": "Severity", "value": f["severity"], "inline": True},
                       {"name": "Run", "value": name[:1024], "inline": True},
                       {"name": "Step", "value": str(f["step"]), "inline": True},
                       {"name": "What to try", "value": f["action"][:1024]}],
            "timestamp": f["ends_at"] if f["status"] == "resolved" else f["starts_at"],
        }],
    }


def render(fmt: str, f: dict, receiver: str) -> str:
    body = generic(f, receiver) if fmt == "generic" else slack(f) if fmt == "slack" \
        else discord(f)
    # JSON has no NaN/Infinity: such numbers are written as the API writes them, as strings
    return json.dumps(stored_safe(body), allow_nan=False, default=str)
