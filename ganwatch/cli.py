"""The ``ganwatch`` command: serve, migrate, token, demo, replay, import, spool, webhook, train,
eval."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from trainer_client.cli import PROG, OneLineParser, fail
from trainer_client.run import DEFAULT_SERVER  # the one default URL, the client's

DEFAULT_PORT = urlsplit(DEFAULT_SERVER).port  # where `ganwatch demo` serves, unless --port


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from monitor.app import create_app
    from monitor.settings import Settings

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port),
                                   ("data_dir", args.data_dir),
                                   ("database_url", args.database_url)) if v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(PROG, f"setting {'.'.join(map(str, first['loc']))}: {first['msg']}")
        return 2
    print(f"ganwatch: dashboard at http://{_url_host(settings.host)}:{settings.port}/", flush=True)
    try:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                    log_level=settings.log_level, access_log=args.access_log,
                    # open live streams end at once rather than hold a shutdown
                    timeout_graceful_shutdown=2)
    except Exception as exc:
        fail(PROG, f"the server stopped: {type(exc).__name__}: {exc}")
        return 1
    return 0


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _rules(args: argparse.Namespace) -> tuple[dict | None, bool]:
    """``--rules`` parsed (None when not given), and whether it was good."""
    import json

    if not args.rules:
        return None, True
    try:
        rules = json.loads(args.rules)
    except ValueError as exc:
        fail(PROG, f"--rules is not JSON ({exc.msg})")
        return None, False
    if not isinstance(rules, dict):
        fail(PROG, '--rules must be a JSON object, e.g. '
                   '\'{"mode_collapse": {"threshold": 0.3}}\'')
        return None, False
    return rules, True


def _replay(args: argparse.Namespace) -> int:
    from trainer_client.replay import replay

    rules, good = _rules(args)
    if not good:
        return 2
    return replay(Path(args.path), server=args.server or os.environ.get("GANWATCH_URL"),
                  name=args.name, rules=rules)


def _spool(args: argparse.Namespace) -> int:
    from trainer_client.replay import send_spool, spool_status

    path = Path(args.dir) if args.dir else None
    if args.action == "status":
        return spool_status(path)
    return send_spool(path, server=args.server or os.environ.get("GANWATCH_URL"))


def _import(args: argparse.Namespace) -> int:
    from trainer_client.replay import replay_file

    rules, good = _rules(args)
    if not good:
        return 2
    return replay_file(Path(args.path), server=args.server or os.environ.get("GANWATCH_URL"),
                       name=args.name, rules=rules, verb="imported")


def _demo(args: argparse.Namespace) -> int:
    from ganwatch.demo import run_demo

    return run_demo(port=args.port, data_dir=Path(args.data_dir), steps=args.steps,
                    keep_serving=not args.exit)


def _run_trainer(module: str, args: list[str]) -> int:
    """`ganwatch train` and `ganwatch eval` run the trainer's modules in a process of their own:
    the server side of ganwatch never imports torch."""
    import subprocess

    try:
        return subprocess.call([sys.executable, "-m", module, *args])
    except KeyboardInterrupt:
        return 130


def _database_settings(args: argparse.Namespace):
    from monitor.settings import Settings

    overrides = {k: v for k, v in (("data_dir", args.data_dir),
                                   ("database_url", args.database_url)) if v is not None}
    return Settings(**overrides)


def _token(args: argparse.Namespace) -> int:
    """Tokens are made on the server's machine, against its database: no token needed to make
    the first one."""
    from sqlalchemy.exc import SQLAlchemyError

    from monitor import auth, migrate
    from monitor.db import make_engine, make_sessionmaker

    engine = make_engine(_database_settings(args).resolved_database_url())
    try:
        migrate.upgrade(engine)
        with make_sessionmaker(engine)() as session:
            if args.action == "create":
                try:
                    row, token = auth.create_token(session, project=args.project or "",
                                                   scope=args.scope, name=args.name or "")
                except ValueError as exc:
                    fail(PROG, str(exc))
                    return 2
                print(token)
                print(f"ganwatch: token {row.id} ({row.scope}, project {row.project}): shown "
                      "once; the server keeps only its hash", file=sys.stderr)
            elif args.action == "list":
                rows = auth.list_tokens(session)
                print(f"{'id':>4s}  {'scope':7s} {'project':20s} {'name':20s} "
                      f"{'created':20s} {'last used':20s} revoked")
                for r in rows:
                    fmt = (lambda d: d.strftime("%Y-%m-%d %H:%M:%S") if d else "-")  # noqa: E731
                    print(f"{r.id:>4d}  {r.scope:7s} {r.project:20s} {r.name or '-':20s} "
                          f"{fmt(r.created_at):20s} {fmt(r.last_used_at):20s} "
                          f"{fmt(r.revoked_at)}")
            else:
                row = auth.revoke_token(session, args.id)
                if row is None:
                    fail(PROG, f"no token {args.id}")
                    return 1
                print(f"ganwatch: token {row.id} revoked")
    except SQLAlchemyError as exc:
        fail(PROG, f"{engine.url.render_as_string()}: {str(exc).splitlines()[0]}")
        return 1
    finally:
        engine.dispose()
    return 0


def _migrate(args: argparse.Namespace) -> int:
    """What the server does at start, alone: for a deployment's migration step."""
    from sqlalchemy.exc import SQLAlchemyError

    from monitor import migrate
    from monitor.db import make_engine

    engine = make_engine(_database_settings(args).resolved_database_url())
    try:
        migrate.upgrade(engine)
    except SQLAlchemyError as exc:
        fail(PROG, f"could not migrate {engine.url.render_as_string()}: "
                   f"{str(exc).splitlines()[0]}")
        return 1
    finally:
        engine.dispose()
    print(f"ganwatch: {engine.url.render_as_string()} is at the newest schema")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog=PROG, description="Training-health diagnostics for GANs.",
                           hint=" (see --help)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server and dashboard")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; GANWATCH_HOST)")
    serve.add_argument("--port", type=int, help=f"port (default {DEFAULT_PORT}; GANWATCH_PORT)")
    serve.add_argument("--data-dir", help="where the SQLite file lives (default .ganwatch)")
    serve.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql://user@host/db")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=_serve)

    mig = sub.add_parser("migrate", help="create or upgrade the database schema, then exit")
    mig.add_argument("--data-dir", help="where the SQLite file lives (default .ganwatch)")
    mig.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql://user@host/db")
    mig.set_defaults(func=_migrate)

    token = sub.add_parser("token", help="API tokens: create, list, revoke (on the server's "
                                         "machine, against its database)")
    token_sub = token.add_subparsers(dest="action", required=True)
    create = token_sub.add_parser("create", help="make a token; it is printed once")
    create.add_argument("--scope", choices=("ingest", "read", "admin"), required=True)
    create.add_argument("--project", help="the project it may use (ingest and read tokens)")
    create.add_argument("--name", help="a note: who or what it is for")
    token_sub.add_parser("list", help="the tokens (never the tokens themselves)")
    revoke = token_sub.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("id", type=int)
    for p in (create, revoke, token_sub.choices["list"]):
        p.add_argument("--data-dir", help="where the SQLite file lives (default .ganwatch)")
        p.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql://user@host/db")
    token.set_defaults(func=_token)

    demo = sub.add_parser("demo", help="start a server and stream a short GAN training to it")
    demo.add_argument("--port", type=int, default=DEFAULT_PORT)
    demo.add_argument("--data-dir", default=".ganwatch-demo")
    demo.add_argument("--steps", type=int, default=600)
    demo.add_argument("--exit", action="store_true", help="stop the server when training ends")
    demo.set_defaults(func=_demo)

    replay = sub.add_parser(
        "replay", help="diagnose a recorded run (a JSON Lines file, one step per line) or "
                       "another tool's log: the rules' verdict, printed")
    replay.add_argument("path", help="a record file (from --record / init(record=...)), or "
                                     "another tool's log (as ganwatch import reads)")
    replay.add_argument("--server", help=f"server URL (default GANWATCH_URL or {DEFAULT_SERVER})")
    replay.add_argument("--name", help="name of the replayed run (default: the record's, or "
                                       "the log's)")
    replay.add_argument("--rules", help='rule settings as JSON, e.g. \'{"d_loss_spikes": '
                                        'false}\' (as in trainer_client.init(rules=...))')
    replay.set_defaults(func=_replay)

    imp = sub.add_parser(
        "import", help="send another tool's training log to a server as a run, and print the "
                       "alerts it raised: TensorBoard event files, Lightning metrics.csv, "
                       "StyleGAN stats.jsonl, W&B history (CSV, JSON Lines), MLflow metrics")
    imp.add_argument("path", help="the log: a file, or a directory holding one (TensorBoard "
                                  "event files, an mlruns run)")
    imp.add_argument("--server", help=f"server URL (default GANWATCH_URL or {DEFAULT_SERVER})")
    imp.add_argument("--name", help="name of the run (default: the log's directory or file)")
    imp.add_argument("--rules", help='rule settings as JSON, e.g. \'{"d_loss_spikes": '
                                     'false}\' (as in trainer_client.init(rules=...))')
    imp.set_defaults(func=_import)

    spool = sub.add_parser(
        "spool", help="what clients could not send (the server was away): status, or send it")
    spool_sub = spool.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("send", "send what is spooled to the server"),
                         ("status", "what is spooled, per run: unsent and refused")):
        act = spool_sub.add_parser(action, help=text)
        act.add_argument("dir", nargs="?", help="a run's spool directory or the spool root "
                                                "(default GANWATCH_SPOOL_DIR or "
                                                "~/.cache/ganwatch/spool)")
        if action == "send":
            act.add_argument("--server",
                             help=f"server URL (default GANWATCH_URL or {DEFAULT_SERVER})")
        act.set_defaults(func=_spool)

    from ganwatch.webhook import add_parser as add_webhook_parser

    add_webhook_parser(sub)

    # Listed for --help; main() hands their arguments to the trainer's own parser.
    sub.add_parser("train", help="the reference DCGAN trainer: ganwatch train --help")
    sub.add_parser("eval", help="evaluate a trainer checkpoint: ganwatch eval --help")

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("train", "eval"):  # everything after it belongs to the trainer
        module = "trainer_client.dcgan" + (".eval_cli" if argv[0] == "eval" else "")
        return _run_trainer(module, argv[1:])
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
