"""``ganwatch replay DIR``: send what a client left in its spool, in order."""

from __future__ import annotations

import sys
from pathlib import Path

from trainer_client.run import DEFAULT_SERVER
from trainer_client.spool import Spool, read_message
from trainer_client.transport import Outcome, Transport


def replay(path: Path, server: str | None = None) -> int:
    """Send every spooled message under path; 0 when all were delivered."""
    if not path.is_dir():
        print(f"ganwatch: error: no spool directory at {path}", file=sys.stderr)
        return 2
    run_dirs = [path] if any(path.glob("*.msg")) else sorted(
        d for d in path.iterdir() if d.is_dir() and any(d.glob("*.msg")))
    if not run_dirs:
        print(f"ganwatch: nothing to replay in {path}")
        return 0
    transport = Transport(server or DEFAULT_SERVER)
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
                    print(f"ganwatch: error: the server did not take {file.name} ({detail}); "
                          f"{len(spool.pending_files())} batches are still in {directory}",
                          file=sys.stderr)
                    return 1
            spool.remove_if_empty()
            spool.unlock()
    finally:
        transport.close()
    print(f"ganwatch: replayed {sent} batches" + (f", {refused} refused" if refused else ""))
    return 1 if refused else 0
