"""The sender: a daemon thread that turns queued records into batches and delivers them.

Every batch is first written to the run's spool (the on-disk outbox), then sent; it leaves the
spool only when the server acknowledged it. Sending is retried with exponential backoff and
jitter while the server is unreachable or answers 5xx/408/429; batches made meanwhile wait in
the spool, in order, and go out as soon as the server is back.
"""

from __future__ import annotations

import gzip
import json
import random
import sys
import threading
import time
import uuid
from collections import deque

from trainer_client import tensors
from trainer_client.spool import Message, Spool, orphaned_spools, read_message
from trainer_client.transport import Outcome, Transport

MAX_BACKOFF_S = 10.0
READBACK_TIMEOUT_S = 30.0


def warn(text: str) -> None:
    try:
        print(f"ganwatch: {text}", file=sys.stderr, flush=True)
    except Exception:
        pass


class Sender:
    def __init__(self, *, run_id: str, transport: Transport, spool: Spool, records: deque,
                 samples: deque, flush_interval: float, max_batch: int,
                 adopt_orphans: bool = True, recorder=None, offline: bool = False) -> None:
        self.run_id = run_id
        self.transport = transport
        self.spool = spool
        self.records = records
        self.samples = samples
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.wake = threading.Event()
        self.build_lock = threading.Lock()
        self.closing = False
        self.close_deadline = 0.0
        self.final_messages: list[Message] = []
        self.spools: list[Spool] = [spool]
        self.adopt_orphans = adopt_orphans and not offline
        self.recorder = recorder  # a trainer_client.record.Recorder, or None
        self.offline = offline  # record only: nothing is spooled or sent
        self.failures = 0
        self.next_try = 0.0
        self.last_error = ""
        self.rejected = 0
        self.dropped = 0
        self.thread = threading.Thread(target=self._loop, name="ganwatch-sender", daemon=True)

    def start(self) -> None:
        self.thread.start()

    # -- the thread ------------------------------------------------------------------------

    def _loop(self) -> None:
        if self.adopt_orphans:
            self._adopt()
        self.wake.set()  # send the run's creation (and any adopted spool) right away
        while True:
            wait = self.flush_interval * random.uniform(0.9, 1.1)
            if self.failures:
                wait = max(0.0, min(wait, self.next_try - time.monotonic()))
            self.wake.wait(wait)
            self.wake.clear()
            closing = self.closing
            try:
                self.build()
                if closing:
                    with self.build_lock:
                        self._spool_final_messages()
                    self._drain_until(self.close_deadline)
                    return
                if time.monotonic() >= self.next_try:
                    self.drain()
            except Exception as exc:  # the thread must survive anything
                warn(f"sender error (training continues): {type(exc).__name__}: {exc}")
                if closing:
                    return

    def _spool_final_messages(self) -> None:
        """Queue the run's last requests (its finish) behind everything else; hold build_lock."""
        for message in self.final_messages:
            self.spool.append(message)
        self.final_messages = []

    def _drain_until(self, deadline: float) -> None:
        """At exit: keep retrying, with the same backoff, until everything is sent or time is up."""
        while not self.drain() and time.monotonic() < deadline:
            pause = min(self.next_try, deadline) - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # backoff between retries, bounded by the exit deadline

    def _adopt(self) -> None:
        """Take over spools left by clients that exited with data unsent."""
        for directory in orphaned_spools(self.spool.dir.parent, exclude=self.spool.dir):
            orphan = Spool(directory)
            if orphan.try_lock():
                self.spools.append(orphan)

    # -- building batches ------------------------------------------------------------------

    def build(self) -> None:
        """Turn everything queued into messages in the spool."""
        with self.build_lock:
            self._build_locked()

    def _build_locked(self) -> None:
        while self.records:
            n = min(len(self.records), self.max_batch)
            batch = [self.records.popleft() for _ in range(n)]
            message = self._points_message(batch)
            if message is not None:
                self.spool.append(message)
        while self.samples:
            message = self._sample_message(*self.samples.popleft())
            if message is not None:
                self.spool.append(message)

    def _points_message(self, records: list) -> Message | None:
        series: dict[str, tuple[list, list, list]] = {}
        scalars_later = []  # 0-d tensors to read back, with where their values go
        vectors_later = []  # 1-d tensors (gradient norms), with their keys
        for step, wall_time, scalars, vectors in records:
            for key, value in scalars.items():
                if type(value) is float:
                    cols = series.get(key)
                    if cols is None:
                        cols = series[key] = ([], [], [])
                    cols[0].append(step)
                    cols[1].append(value)
                    cols[2].append(wall_time)
                else:
                    scalars_later.append((value, (key,), step, wall_time))
            if vectors:
                for keys, vector in vectors:
                    vectors_later.append((vector, keys, step, wall_time))
        for later in (scalars_later, vectors_later):
            if not later:
                continue
            deadline = time.monotonic() + READBACK_TIMEOUT_S
            values = tensors.materialise([item[0] for item in later], deadline)
            if values is None:
                self.dropped += len(later)
                warn(f"{len(later)} tensor values could not be read back from the GPU in "
                     f"{READBACK_TIMEOUT_S:.0f}s and were dropped")
                continue
            pos = 0
            for _, keys, step, wall_time in later:
                for key in keys:
                    cols = series.get(key)
                    if cols is None:
                        cols = series[key] = ([], [], [])
                    cols[0].append(step)
                    cols[1].append(values[pos])
                    cols[2].append(wall_time)
                    pos += 1
        if not series:
            return None
        if self.recorder is not None:
            try:
                self.recorder.write(series)
            except Exception as exc:
                warn(f"could not write the record {self.recorder.path} ({exc}); recording stops")
                self.recorder = None
        if self.offline:
            return None
        n_points = sum(len(c[0]) for c in series.values())
        body = json.dumps({
            "batch_id": uuid.uuid4().hex,
            "series": {k: {"steps": s, "values": v, "wall_times": t}
                       for k, (s, v, t) in series.items()},
        }).encode()  # NaN/Infinity are written as bare tokens, which the server accepts
        return Message(method="POST", path=f"/api/v1/runs/{self.run_id}/points",
                       body=gzip.compress(body, compresslevel=1), n_points=n_points,
                       headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    def _sample_message(self, step: int, wall_time: float, key: str, batch) -> Message | None:
        if self.offline:
            return None
        host = tensors.to_host(batch, time.monotonic() + READBACK_TIMEOUT_S)
        png = tensors.image_grid_png(host) if host is not None else None
        if png is None:
            return None
        return Message(method="POST", path=f"/api/v1/runs/{self.run_id}/samples", body=png,
                       params={"step": step, "key": key, "wall_time": wall_time,
                               "batch_id": uuid.uuid4().hex},
                       headers={"Content-Type": "image/png"}, n_samples=1)

    # -- delivering ------------------------------------------------------------------------

    def drain(self) -> bool:
        """Send spooled messages in order; True when every spool is empty."""
        for spool in list(self.spools):
            for path in spool.pending_files():
                try:
                    message = read_message(path)
                except FileNotFoundError:
                    continue
                outcome, detail = self.transport.send(message)
                # Rule settings or a config the server does not accept (a config too deep or
                # too large, say) must not cost the run: create it without them, and say so.
                dropping = [(_without_rules, "rule settings", "the run is monitored with the "
                             "default rules"), (_without_config, "config", "the run is "
                                                "created without it")]
                if any(loc[:2] == ("body", "config") for loc in getattr(detail, "locs", ())):
                    dropping.reverse()  # the server's 422 names the config
                for strip, what, instead in dropping:
                    fallback = strip(message) if outcome is Outcome.REJECTED else None
                    if fallback is None:
                        continue
                    warn(f"the server refused this run's {what} ({detail}); {instead}")
                    spool.rewrite(fallback)
                    message = fallback
                    outcome, detail = self.transport.send(message)
                if outcome is Outcome.SENT:
                    spool.done(message)
                elif outcome is Outcome.REJECTED:
                    self.rejected += 1
                    kept = spool.reject(message, detail)
                    warn(f"the server refused a batch ({detail}); it is kept in {kept}")
                else:
                    self._backoff(detail)
                    return False
            if spool is not self.spool:
                spool.remove_if_empty()
                self.spools.remove(spool)
        if self.failures:
            warn("the server is reachable again; spooled data has been sent")
        self.failures = 0
        self.next_try = 0.0
        return True

    def _backoff(self, detail: str) -> None:
        if self.failures == 0:
            warn(f"cannot reach the server ({detail}); spooling to {self.spool.dir} "
                 "and retrying in the background")
        self.failures += 1
        self.last_error = detail
        delay = min(MAX_BACKOFF_S, 0.25 * 2 ** min(self.failures, 10))
        self.next_try = time.monotonic() + delay * random.uniform(0.5, 1.5)

    # -- closing ---------------------------------------------------------------------------

    def close(self, final: list[Message], timeout: float) -> None:
        """Build and send everything left, for at most timeout seconds."""
        with self.build_lock:
            self.final_messages = list(final)
        self.close_deadline = time.monotonic() + timeout
        self.closing = True
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
        if self.thread.is_alive():
            # Out of time: make sure what is still queued at least reaches the spool.
            if self.build_lock.acquire(timeout=5.0):  # bounded: the thread may be stuck
                try:
                    self._build_locked()  # what is still queued, then the finish
                    self._spool_final_messages()
                finally:
                    self.build_lock.release()
        else:
            self.build()  # anything logged after the thread's last build


def _without_rules(message: Message) -> Message | None:
    """The run-create request without its rule settings, or None if it is not one that has any."""
    return _without(message, "rules")


def _without_config(message: Message) -> Message | None:
    """The run-create request without its config, or None if it is not one that has any."""
    return _without(message, "config")


def _without(message: Message, field: str) -> Message | None:
    if message.method != "POST" or message.path != "/api/v1/runs":
        return None
    try:
        body = json.loads(message.body)
    except ValueError:
        return None
    if not isinstance(body, dict) or not body.pop(field, None):
        return None
    return Message(method=message.method, path=message.path, body=json.dumps(body).encode(),
                   params=message.params, headers=message.headers, file=message.file)
