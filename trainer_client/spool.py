"""The on-disk outbox: every message is written here before it is sent, and removed once the
server has acknowledged it. A server that is down, a client killed mid-send, or a process that
exits with data unsent therefore loses nothing: the next client (or ``ganwatch spool send
[DIR]``) sends what is left, in order.

Layout: ``<root>/<run_id>/<seq>.msg`` (a JSON header line, then the body) plus a ``lock`` file
held with ``flock`` by the process that owns the run; ``rejected/`` keeps what the server refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from trainer_client.settings import resolve

try:
    import fcntl
except ImportError:  # Windows: no cross-process lock, a spool is then replayed only by its owner
    fcntl = None  # type: ignore[assignment]


def default_root() -> Path:
    env = resolve("spool_dir")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "ganwatch" / "spool"


@dataclass
class Message:
    """One HTTP request to make: method, path and params, a body and its content headers."""

    method: str
    path: str
    body: bytes = b""
    params: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    n_points: int = 0
    n_samples: int = 0
    file: Path | None = None

    def header(self) -> bytes:
        return json.dumps({
            "method": self.method, "path": self.path, "params": self.params,
            "headers": self.headers, "n_points": self.n_points, "n_samples": self.n_samples,
        }).encode()


def read_message(path: Path) -> Message:
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n")
    h = json.loads(head)
    return Message(method=h["method"], path=h["path"], body=body, params=h.get("params", {}),
                   headers=h.get("headers", {}), n_points=h.get("n_points", 0),
                   n_samples=h.get("n_samples", 0), file=path)


class Spool:
    """The outbox of one run."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = None
        existing = self.pending_files()
        self._seq = int(existing[-1].stem) + 1 if existing else 0

    def try_lock(self) -> bool:
        """Own this spool (released when the process dies, even by SIGKILL)."""
        if fcntl is None:
            return True
        fd = os.open(self.dir / "lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def append(self, message: Message) -> Path:
        message.file = self.dir / f"{self._seq:012d}.msg"
        self._seq += 1
        self.rewrite(message)  # written whole, then renamed: a reader never sees half of it
        return message.file

    def rewrite(self, message: Message) -> None:
        """Replace a spooled message's content in place (same file, same place in the queue)."""
        if message.file is None:
            return
        tmp = message.file.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(message.header() + b"\n" + message.body)
        os.replace(tmp, message.file)

    def pending_files(self) -> list[Path]:
        return sorted(self.dir.glob("*.msg"))

    def done(self, message: Message) -> None:
        if message.file is not None:
            message.file.unlink(missing_ok=True)

    def reject(self, message: Message, reason: str) -> Path | None:
        """Keep a message the server refused (it would never succeed) out of the queue."""
        if message.file is None:
            return None
        rejected = self.dir / "rejected"
        rejected.mkdir(exist_ok=True)
        target = rejected / message.file.name
        os.replace(message.file, target)
        target.with_suffix(".reason").write_text(reason + "\n")
        return target

    def totals(self) -> tuple[int, int, int]:
        """(messages, points, samples) still waiting to be sent."""
        n = points = samples = 0
        for path in self.pending_files():
            with open(path, "rb") as f:
                h = json.loads(f.readline())
            n += 1
            points += h.get("n_points", 0)
            samples += h.get("n_samples", 0)
        return n, points, samples

    def remove_if_empty(self) -> None:
        if self.pending_files() or (self.dir / "rejected").exists():
            return
        self.unlock()
        (self.dir / "lock").unlink(missing_ok=True)
        try:
            self.dir.rmdir()
        except OSError:
            pass


def orphaned_spools(root: Path, exclude: Path | None = None) -> list[Path]:
    """Run spools under root that still hold messages (the caller takes those it can lock)."""
    if not root.is_dir():
        return []
    return [d for d in sorted(root.iterdir())
            if d != exclude and d.is_dir() and any(d.glob("*.msg"))]
