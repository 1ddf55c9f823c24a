"""The sender: a daemon thread that turns queued records into batches and delivers them.

Every batch is first written to the run's spool (the on-disk outbox), then sent; it leaves the
spool only when the server acknowledged it. Sending is retried with exponential backoff and
jitter while the server is unreachable or answers 5xx/408/429; batches made meanwhile wait in
the spool, in order, and go out as soon as the server is back.
"""

from __future__ import annotations

import random
import threading
import time
import uuid

from trainer_client import protocol, tensors
from trainer_client.images import image_grid_png
from trainer_client.log import warn
from trainer_client.queues import BoundedQueue
from trainer_client.spool import Message, Spool, orphaned_spools, read_message
from trainer_client.transport import Outcome, Transport

MAX_BACKOFF_S = 10.0
READBACK_TIMEOUT_S = 30.0


# What a run can be created without, and what then happens instead.
DROPPABLE = (("rules", "rule settings", "the run is monitored with the default rules"),
             ("config", "config", "the run is created without it"),
             ("loss", "loss family", "the server infers it from what is logged"),
             ("keys", "keys", "the rules read the names they know"))


class Sender:
    """Takes the run's steps (``records``: (step, wall_time, scalars, vectors)) and sample
    batches (``samples``: (step, wall_time, key, batch, value range or None)) off their
    queues, turns them into requests (trainer_client.protocol) in the spool, and sends the
    spool through ``transport``.

    Its statistics are read-only properties; ``build`` and ``drain`` are the steps the thread
    repeats, callable directly where a test wants them one at a time."""

    def __init__(self, *, run_id: str, transport: Transport, spool: Spool,
                 records: BoundedQueue, samples: BoundedQueue, flush_interval: float,
                 max_batch: int, adopt_orphans: bool = True, recorder=None,
                 offline: bool = False) -> None:
        self._run_id = run_id
        self._transport = transport
        self._spool = spool
        self._records = records
        self._samples = samples
        self._flush_interval = flush_interval
        self._max_batch = max_batch
        self._wake = threading.Event()
        self._build_lock = threading.Lock()
        self._closing = False
        self._close_deadline = 0.0
        self._final_messages: list[Message] = []
        self._spools: list[Spool] = [spool]
        self._adopt_orphans = adopt_orphans and not offline
        self._recorder = recorder  # a trainer_client.record.Recorder, or None
        self._offline = offline  # record only: nothing is spooled or sent
        self._failures = 0
        self._next_try = 0.0
        self._last_error = ""
        self._rejected = 0
        self._dropped = 0
        self._thread = threading.Thread(target=self._loop, name="ganwatch-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Build and send now rather than at the next flush interval (it does not wait)."""
        self._wake.set()

    # -- statistics ------------------------------------------------------------------------

    @property
    def failures(self) -> int:
        """Failed attempts in a row (0 once the spool is sent): the backoff's exponent."""
        return self._failures

    @property
    def retry_at(self) -> float:
        """When (time.monotonic()) the next attempt is due after a failure; 0.0 when none is."""
        return self._next_try

    @property
    def last_error(self) -> str:
        """What the last failed attempt ran into ("" if none failed)."""
        return self._last_error

    @property
    def rejected(self) -> int:
        """Requests the server refused for good, kept in the spool's rejected/ folder."""
        return self._rejected

    @property
    def dropped(self) -> int:
        """Tensor values that could not be read back from their device in time."""
        return self._dropped

    @property
    def recording(self) -> bool:
        """Whether the run's steps are still being written to its record file."""
        return self._recorder is not None

    # -- the thread ------------------------------------------------------------------------

    def _loop(self) -> None:
        if self._adopt_orphans:
            self._adopt()
        self._wake.set()  # send the run's creation (and any adopted spool) right away
        while True:
            wait = self._flush_interval * random.uniform(0.9, 1.1)
            if self._failures:
                wait = max(0.0, min(wait, self._next_try - time.monotonic()))
            self._wake.wait(wait)
            self._wake.clear()
            closing = self._closing
            try:
                self.build()
                if closing:
                    with self._build_lock:
                        self._spool_final_messages()
                    self._drain_until(self._close_deadline)
                    return
                if time.monotonic() >= self._next_try:
                    self.drain()
            except Exception as exc:  # the thread must survive anything
                warn(f"sender error (training continues): {type(exc).__name__}: {exc}",
                     kind="sender error")
                if closing:
                    return

    def _spool_final_messages(self) -> None:
        """Queue the run's last requests (its finish) behind everything else; hold build_lock."""
        for message in self._final_messages:
            self._spool.append(message)
        self._final_messages = []

    def _drain_until(self, deadline: float) -> None:
        """At exit: keep retrying, with the same backoff, until everything is sent or time is up."""
        while not self.drain() and time.monotonic() < deadline:
            pause = min(self._next_try, deadline) - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # backoff between retries, bounded by the exit deadline

    def _adopt(self) -> None:
        """Take over spools left by clients that exited with data unsent."""
        for directory in orphaned_spools(self._spool.dir.parent, exclude=self._spool.dir):
            orphan = Spool(directory)
            if orphan.try_lock():
                self._spools.append(orphan)

    # -- building batches ------------------------------------------------------------------

    def build(self) -> None:
        """Turn everything queued into messages in the spool."""
        with self._build_lock:
            self._build_locked()

    def _build_locked(self) -> None:
        while self._records:
            message = self._points_message(self._records.take(self._max_batch))
            if message is not None:
                self._spool.append(message)
        while self._samples:
            message = self._sample_message(*self._samples.take(1)[0])
            if message is not None:
                self._spool.append(message)

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
                self._dropped += len(later)
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
        if self._recorder is not None:
            try:
                self._recorder.write(series)
            except Exception as exc:
                warn(f"could not write the record {self._recorder.path} ({exc}); recording stops")
                self._recorder = None
        if self._offline:
            return None
        return protocol.points(self._run_id, uuid.uuid4().hex, series)

    def _sample_message(self, step: int, wall_time: float, key: str, batch,
                        value_range: tuple[float, float] | None) -> Message | None:
        if self._offline:
            return None
        host = tensors.to_host(batch, time.monotonic() + READBACK_TIMEOUT_S)
        png = image_grid_png(host, value_range=value_range) if host is not None else None
        if png is None:
            return None
        return protocol.sample(self._run_id, uuid.uuid4().hex, step=step, key=key,
                               wall_time=wall_time, png=png)

    # -- delivering ------------------------------------------------------------------------

    def drain(self) -> bool:
        """Send spooled messages in order; True when every spool is empty."""
        for spool in list(self._spools):
            for path in spool.pending_files():
                try:
                    message = read_message(path)
                except FileNotFoundError:
                    continue
                outcome, detail = self._transport.send(message)
                # Rule settings, a config, a loss family or keys the server does not accept (a
                # config too deep, an older server that knows no loss families) must not cost
                # the run: create it without them, the one the 422 names first, and say so.
                locs = getattr(detail, "locs", ())
                dropping = sorted(DROPPABLE, key=lambda d: not protocol.blames(locs, d[0]))
                for field, what, instead in dropping:
                    if outcome is not Outcome.REJECTED:
                        break
                    fallback = protocol.create_run_without(message, field)
                    if fallback is None:
                        continue
                    warn(f"the server refused this run's {what} ({detail}); {instead}")
                    spool.rewrite(fallback)
                    message = fallback
                    outcome, detail = self._transport.send(message)
                if outcome is Outcome.SENT:
                    spool.done(message)
                elif outcome is Outcome.REJECTED:
                    self._rejected += 1
                    kept = spool.reject(message, detail)
                    warn(f"the server refused a batch ({detail}); it is kept in {kept}",
                         kind="refused batch")
                else:
                    self._backoff(detail)
                    return False
            if spool is not self._spool:
                spool.remove_if_empty()
                self._spools.remove(spool)
        if self._failures:
            warn("the server is reachable again; spooled data has been sent")
        self._failures = 0
        self._next_try = 0.0
        return True

    def _backoff(self, detail: str) -> None:
        if self._failures == 0:
            warn(f"cannot reach the server ({detail}); spooling to {self._spool.dir} "
                 "and retrying in the background")
        self._failures += 1
        self._last_error = detail
        delay = min(MAX_BACKOFF_S, 0.25 * 2 ** min(self._failures, 10))
        self._next_try = time.monotonic() + delay * random.uniform(0.5, 1.5)

    # -- closing ---------------------------------------------------------------------------

    def close(self, final: list[Message], timeout: float) -> None:
        """Build and send everything left, for at most timeout seconds."""
        with self._build_lock:
            self._final_messages = list(final)
        self._close_deadline = time.monotonic() + timeout
        self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            # Out of time: make sure what is still queued at least reaches the spool.
            if self._build_lock.acquire(timeout=5.0):  # bounded: the thread may be stuck
                try:
                    self._build_locked()  # what is still queued, then the finish
                    self._spool_final_messages()
                finally:
                    self._build_lock.release()
        else:
            self.build()  # anything logged after the thread's last build
        if self._recorder is not None:
            self._recorder.close()

