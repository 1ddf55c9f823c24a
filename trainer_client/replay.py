"""``ganwatch replay`` and ``ganwatch import``: send a recorded run (a JSON Lines file, one step
per line) or another tool's training log (trainer_client.importers reads them) through the
server's ingest path, to be diagnosed; and ``ganwatch spool send|status``: what a client left
in its spool (a directory)."""

from __future__ import annotations

import hashlib
import secrets
import sys
import time
from pathlib import Path

from trainer_client import importers, protocol
from trainer_client.cli import PROG, fail
from trainer_client.record import RecordError, read_record
from trainer_client.run import DEFAULT_SERVER
from trainer_client.spool import Message, Spool, default_root, read_message
from trainer_client.transport import HttpTransport, Outcome, Transport

STEPS_PER_BATCH = 500
SEND_ATTEMPTS = 6  # a request the server could not take (5xx, network) is tried this often


def error(text: str) -> None:
    fail(PROG, text)


def _spool_runs(path: Path) -> list[Path]:
    """The run directories of a spool: ``path`` itself when it is one, else its sub-directories
    holding messages (or refused ones)."""
    def is_run(d: Path) -> bool:
        return any(d.glob("*.msg")) or (d / "rejected").is_dir()
    if is_run(path):
        return [path]
    return sorted(d for d in path.iterdir() if d.is_dir() and is_run(d))


def replay(path: Path, server: str | None = None, **options) -> int:
    """``ganwatch replay``: diagnose a recorded JSON Lines file or another tool's training log
    (a file, or a directory holding one: see trainer_client.importers). A client's spool is
    ``ganwatch spool send``'s, and is refused here with a line saying so."""
    if path.is_file():
        return replay_file(path, server, **options)
    if not path.is_dir():
        error(f"no record file or log at {path}")
        return 2
    if importers.holds_logs(path):
        return replay_file(path, server, **options)
    if _spool_runs(path):
        error(f"{path} is a client's spool, not a record: send it with "
              f"`ganwatch spool send {path}`")
        return 2
    error(f"{path} holds no record or log that ganwatch reads")
    return 2


def spool_status(path: Path | None = None) -> int:
    """``ganwatch spool status [DIR]``: what each run's spool holds, unsent and refused."""
    path = path or default_root()
    if not path.is_dir():
        print(f"ganwatch: nothing spooled ({path} does not exist)")
        return 0
    runs = _spool_runs(path)
    if not runs:
        print(f"ganwatch: nothing spooled in {path}")
        return 0
    for directory in runs:
        spool = Spool(directory)
        n, points, samples = spool.totals()
        refused = len(list((directory / "rejected").glob("*.msg")))
        in_use = not spool.try_lock()
        if not in_use:
            spool.unlock()
        print(f"{directory.name}: {n} requests unsent ({points} points, {samples} sample "
              f"grids), {refused} refused" + (" (a running client is sending it)" if in_use
                                              else ""))
    print(f"ganwatch: send them with `ganwatch spool send {path}`")
    return 0


def send_spool(path: Path | None = None, server: str | None = None) -> int:
    """``ganwatch spool send [DIR]``: send what clients left in a spool (a run's directory, or
    the spool root, by default ``GANWATCH_SPOOL_DIR`` or ~/.cache/ganwatch/spool); 0 when all
    was delivered."""
    path = path or default_root()
    if not path.is_dir():
        error(f"no spool directory at {path}")
        return 2
    run_dirs = [d for d in _spool_runs(path) if any(d.glob("*.msg"))]
    if not run_dirs:
        print(f"ganwatch: nothing to send in {path}")
        return 0
    transport = HttpTransport(server or DEFAULT_SERVER)
    sent = refused = 0
    try:
        for directory in run_dirs:
            spool = Spool(directory)
            if not spool.try_lock():
                print(f"ganwatch: {directory} is in use by a running client; skipped",
                      file=sys.stderr)
                continue

            for file in spool.pending_files():
                message = read_message(file)
                outcome, detail = transport.send(message)
                if outcome is Outcome.SENT:
                    spool.done(message)
                    sent += 1
                elif outcome is Outcome.REJECTED:
                    spool.reject(message, detail)
                    refused += 1
                else:
                    error(f"the server did not take {file.name} ({detail}); "
                          f"{len(spool.pending_files())} batches are still in {directory}")
                    return 1
            spool.remove_if_empty()
            spool.unlock()
    finally:
        transport.close()
    print(f"ganwatch: sent {sent} batches" + (f", {refused} refused" if refused else ""))
    return 1 if refused else 0


def _send(transport: Transport, message: Message) -> tuple[Outcome, str]:
    """Send, retrying what might succeed later a bounded number of times (with backoff)."""
    outcome, detail = transport.send(message)
    for attempt in range(1, SEND_ATTEMPTS):
        if outcome is not Outcome.RETRY:
            break
        time.sleep(min(8.0, 0.25 * 2 ** attempt))  # backoff before a retry, bounded
        outcome, detail = transport.send(message)
    return outcome, detail


def _points_message(run_id: str, batch_key: str, rows: list) -> Message:
    series: dict[str, tuple[list, list, list | None]] = {}
    for step, wall_time, values in rows:
        for key, value in values.items():
            cols = series.setdefault(key, ([], [], []))
            cols[0].append(step)
            cols[1].append(value)
            cols[2].append(wall_time)
    for key, (steps, values, wall_times) in series.items():
        if all(t is None for t in wall_times):
            series[key] = (steps, values, None)  # the server stamps them
        elif any(t is None for t in wall_times):
            known = next(t for t in wall_times if t is not None)
            series[key] = (steps, values, [known if t is None else t for t in wall_times])
    # the batch id is derived from the run and the batch's place: a retried request is a no-op
    batch_id = hashlib.sha1(f"{run_id}:{batch_key}".encode()).hexdigest()
    return protocol.points(run_id, batch_id, series)


def _record_rows(path: Path):
    """A record's steps as (step, wall_time, values), in the file's order."""
    for line in read_record(path):
        if line.header is None and not line.cut:
            yield line.step, line.wall_time, line.values


def _batches(rows, steps_per_batch: int):
    """(step, wall_time, values) rows as lists at most steps_per_batch long; a step going back
    starts a new batch, so each batch's steps are in order."""
    batch: list = []
    for row in rows:
        if batch and (len(batch) >= steps_per_batch or row[0] < batch[-1][0]):
            yield batch
            batch = []
        batch.append(row)
    if batch:
        yield batch


def replay_file(path: Path, server: str | None = None, *, verb: str = "replayed",
                **options) -> int:
    """A record file, or another tool's log (a file or a directory holding one), sent as a
    run: what ``ganwatch replay FILE`` and ``ganwatch import FILE|DIR`` do, with the same
    readers, so both give the same verdict."""
    try:
        source = importers.detect(path)
    except importers.LogError as exc:
        error(str(exc))
        return 2
    if source.format in importers.RECORD_FORMATS:
        return replay_record(source.path, server, verb=verb, **options)
    return replay_log(source, server, verb=verb, **options)


def replay_log(source: importers.Source, server: str | None = None, *,
               name: str | None = None, rules: dict | None = None,
               steps_per_batch: int = STEPS_PER_BATCH, verb: str = "replayed") -> int:
    """Create a run from another tool's log (read whole and checked before anything is
    sent), send its steps in order, finish it and print what the rules found. Exit status as
    :func:`replay_record`'s."""
    try:
        rows = importers.read(source)
    except importers.LogError as exc:
        error(str(exc))
        return 2
    skipped = sum(row.skipped for row in rows)
    rows = [(row.step, row.wall_time, row.values) for row in rows if row.values]
    if not rows:
        error(f"{source.path} holds no scalars")
        return 2
    config = {"imported_from": str(source.path), "log_format": source.format}
    body = _run_body(name or source.name, config, rules)
    what = f"{source.path.name} ({importers.FORMATS[source.format].split(' (')[0]})"
    return _deliver(body, lambda: iter(rows), len(rows), skipped, server,
                    steps_per_batch=steps_per_batch, verb=verb, what=what)


def _run_body(run_name: str, config: dict, rules: dict | None, header: dict | None = None,
              ) -> dict:
    header = header or {}
    return protocol.run_body(secrets.token_hex(8), str(run_name)[:200], config,
                             {**(header.get("rules") or {}), **(rules or {})},
                             header.get("checkin_interval"), header.get("loss"),
                             header.get("keys") if isinstance(header.get("keys"), dict) else None)


def replay_record(path: Path, server: str | None = None, *, name: str | None = None,
                  rules: dict | None = None, steps_per_batch: int = STEPS_PER_BATCH,
                  verb: str = "replayed") -> int:
    """Create a run from a recorded JSON Lines file, send its steps in order through the
    ingest API (the rules evaluate them as they would live), finish it, and print what the
    rules found. Returns 0 on success, 1 if the server refused or could not be reached, 2 for a
    file that cannot be read."""
    header: dict = {}
    steps = skipped = 0
    cut = None
    try:  # the whole file is checked before anything is sent
        for line in read_record(path):
            if line.header is not None:
                header = line.header
            elif line.cut:
                cut = line.number
            else:
                steps += 1
                skipped += line.skipped
    except (RecordError, OSError, EOFError, UnicodeDecodeError) as exc:
        error(str(exc))
        return 2
    if not steps:
        error(f"{path} holds no steps")
        return 2
    config = header.get("config") if isinstance(header.get("config"), dict) else {}
    run_name = name or header.get("name") or path.stem
    body = _run_body(run_name, {**config, "replayed_from": str(path)}, rules, header)
    if cut is not None:
        print(f"ganwatch: {path.name} line {cut}, the last, was cut short (the run was "
              f"killed while writing it?): skipped; the {steps} whole steps before it are "
              f"{verb}", flush=True)
    return _deliver(body, lambda: _record_rows(path), steps, skipped, server,
                    steps_per_batch=steps_per_batch, verb=verb, what=path.name)


def _deliver(body: dict, rows, steps: int, skipped: int, server: str | None, *,
             steps_per_batch: int, verb: str, what: str) -> int:
    """Create the run ``body`` describes, send ``rows()`` ((step, wall_time, values), in
    order) in batches, finish the run, and print its URL and the rules' verdict."""
    run_id, run_name = body["id"], body["name"]
    base = (server or DEFAULT_SERVER).rstrip("/")
    transport = HttpTransport(base)
    try:
        outcome, detail = _send(transport, protocol.create_run(body))
        if outcome is not Outcome.SENT:
            error(f"the server at {base} did not create the run ({detail})")
            return 1
        sent_points = batches = 0
        last_step = None
        for batch in _batches(rows(), steps_per_batch):
            message = _points_message(run_id, str(batches), batch)
            outcome, detail = _send(transport, message)
            if outcome is not Outcome.SENT:
                error(f"the server did not take steps {batch[0][0]}-{batch[-1][0]} "
                      f"({detail}); {sent_points} points were sent to {base}/runs/{run_id}")
                return 1
            sent_points += message.n_points
            batches += 1
            last_step = batch[-1][0]
        _send(transport, protocol.finish(run_id))
        alerts = transport.get_json(protocol.alerts_path(run_id, limit=1000), timeout=10.0)
        rules = transport.get_json(protocol.rules_path(run_id), timeout=10.0)
    finally:
        transport.close()
    print(f"ganwatch: {verb} {steps} steps ({sent_points} points, last step {last_step}) of "
          f"{what} into run '{run_name}': {base}/runs/{run_id}")
    if skipped:
        print(f"ganwatch: {skipped} values that are not numbers were left out")
    print(describe_alerts((alerts or {}).get("data", [])))
    coverage = describe_coverage(rules or {})
    if coverage:
        print(coverage)
    return 0


def describe_coverage(rules: dict) -> str:
    """The rules that could not watch the run, and the loss family and roles they read it
    by: "no alerts" from rules that saw nothing is not an all-clear, and says so."""
    lines = []
    loss, source = rules.get("loss"), rules.get("loss_source")
    roles = {r: k for r, k in (rules.get("roles") or {}).items() if r != k}
    if loss:
        lines.append(f"ganwatch: judged as a {loss} GAN ({source})" + (
            "; reading " + ", ".join(f"{k} as {r}" for r, k in roles.items()) if roles else ""))
    per_rule = rules.get("rules") or {}
    blind = {name: r for name, r in per_rule.items()
             if r.get("applies") and not r.get("silenced") and not r.get("watching")}
    watching = sum(1 for r in per_rule.values() if r.get("watching"))
    if blind:
        lines.append(f"ganwatch: {len(blind)} rule{'s' if len(blind) != 1 else ''} not "
                     "watching: " + "; ".join(f"{name} needs {', '.join(r.get('missing') or [])}"
                                              " (or an alias)" for name, r in blind.items()))
        if watching <= 1:
            lines.append("ganwatch: the rules cannot see this run: it logs nothing they read "
                         "(declare its names with init(keys={...}) or the record's \"keys\")")
    return "\n".join(lines)


def describe_alerts(alerts: list[dict]) -> str:
    """The rules' verdict in plain words, one line per alert, oldest first."""
    if not alerts:
        return "ganwatch: no alerts: no rule found a failure sign"
    lines = [f"ganwatch: {len(alerts)} alert{'s' if len(alerts) != 1 else ''}:"]
    for a in sorted(alerts, key=lambda a: (a.get("started_step") or 0, a.get("id") or 0)):
        when = (f"fired at step {a.get('fired_step')}" if a.get("fired_step") is not None
                else f"pending since step {a.get('started_step')}")
        if a.get("resolved_step") is not None:
            when += f", resolved at step {a['resolved_step']}"
        lines.append(f"  [{a.get('severity')}] {a.get('title')} ({a.get('rule')}): {when}. "
                     f"{a.get('message')}")
    return "\n".join(lines)
