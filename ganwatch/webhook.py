"""``ganwatch webhook add|list|remove|test|log``: webhook subscriptions over a server's API."""

from __future__ import annotations

import argparse
import os

import httpx

from trainer_client.cli import PROG, fail
from trainer_client.protocol import api_path
from trainer_client.run import DEFAULT_SERVER  # the one default URL, the client's


def _call(args: argparse.Namespace, method: str, path: str, **kwargs) -> httpx.Response | None:
    server = (args.server or os.environ.get("GANWATCH_URL") or DEFAULT_SERVER).rstrip("/")
    try:
        token = os.environ.get("GANWATCH_TOKEN")  # an admin token, on a server that needs one
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, server + api_path(path), timeout=30, headers=headers,
                             **kwargs)
    except httpx.HTTPError as exc:
        fail(PROG, f"cannot reach the server at {server} ({type(exc).__name__}: {exc})")
        return None


def _ok(response: httpx.Response | None) -> bool:
    if response is None:
        return False
    if response.is_success:
        return True
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text[:300]
    if isinstance(detail, list):  # a validation error: say which field and why
        detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])[1:]))}: {d.get('msg')}"
                           for d in detail)
    fail(PROG, f"{detail} (HTTP {response.status_code})")
    return False


def _add(args: argparse.Namespace) -> int:
    body = {"url": args.url, "format": args.format, "min_severity": args.min_severity,
            "rules": args.rule or None, "run_ids": args.run or None,
            "enabled": not args.disabled}
    if args.secret:
        body["secret"] = args.secret
    if args.name:
        body["name"] = args.name
    response = _call(args, "POST", "/webhooks", json=body)
    if not _ok(response):
        return 1
    hook = response.json()
    print(f"ganwatch: added webhook {hook['id']} -> {hook['url']} ({hook['format']}, "
          f"{hook['min_severity']} and above)")
    if not args.secret:
        print(f"ganwatch: its signing secret (shown once): {hook['secret']}")
    return 0


def _list(args: argparse.Namespace) -> int:
    response = _call(args, "GET", "/webhooks")
    if not _ok(response):
        return 1
    hooks = response.json()["data"]
    if not hooks:
        print("ganwatch: no webhooks")
    for h in hooks:
        print(f"{h['id']:>4}  {'on ' if h['enabled'] else 'off'}  {h['format']:8s} "
              f"{h['min_severity']:8s} rules={','.join(h['rules'] or ['*'])} "
              f"runs={','.join(h['run_ids'] or ['*'])}  {h['url']}"
              + (f"  ({h['name']})" if h["name"] else ""))
    return 0


def _remove(args: argparse.Namespace) -> int:
    if not _ok(_call(args, "DELETE", f"/webhooks/{args.id}")):
        return 1
    print(f"ganwatch: removed webhook {args.id}")
    return 0


def _test(args: argparse.Namespace) -> int:
    response = _call(args, "POST", f"/webhooks/{args.id}/test")
    if not _ok(response):
        return 1
    print(f"ganwatch: test delivery {response.json()['uuid']} queued; see it with "
          f"ganwatch webhook log {args.id}")
    return 0


def _log(args: argparse.Namespace) -> int:
    response = _call(args, "GET", f"/webhooks/{args.id}/deliveries",
                     params={"limit": args.limit})
    if not _ok(response):
        return 1
    for d in response.json()["data"]:
        codes = ",".join(str(a["status_code"] or "error") for a in d["log"]) or "-"
        extra = f" next try {d['next_attempt_at']}" if d["next_attempt_at"] else ""
        error = f" last error: {d['last_error']}" if d["last_error"] else ""
        print(f"{d['created_at']}  {d['kind']:9s} {d['status']:9s} attempts={d['attempts']} "
              f"[{codes}]{extra}{error}")
    return 0


def add_parser(sub) -> None:
    webhook = sub.add_parser("webhook", help="manage webhook subscriptions of a server")
    commands = webhook.add_subparsers(dest="webhook_command", required=True)

    def command(name: str, func, help_text: str):
        p = commands.add_parser(name, help=help_text)
        p.add_argument("--server", help=f"server URL (default GANWATCH_URL or {DEFAULT_SERVER})")
        p.set_defaults(func=func)
        return p

    add = command("add", _add, "subscribe a URL to alert transitions")
    add.add_argument("url")
    add.add_argument("--secret", help="signing secret (default: generated and printed once)")
    add.add_argument("--format", choices=("generic", "slack", "discord"), default="generic")
    add.add_argument("--min-severity", choices=("warning", "critical"), default="warning")
    add.add_argument("--rule", action="append", help="only this rule (repeat for more)")
    add.add_argument("--run", action="append", help="only this run id (repeat for more)")
    add.add_argument("--name", help="a name, shown as the receiver in deliveries")
    add.add_argument("--disabled", action="store_true", help="add it switched off")
    command("list", _list, "list the webhooks")
    for name, func, text in (("remove", _remove, "delete a webhook"),
                             ("test", _test, "send a test event"),
                             ("log", _log, "show a webhook's delivery log")):
        p = command(name, func, text)
        p.add_argument("id", type=int)
        if name == "log":
            p.add_argument("--limit", type=int, default=20)
