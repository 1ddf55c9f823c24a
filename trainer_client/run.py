"""``init()`` and ``Run``: the two lines a training loop gains."""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from trainer_client import protocol, tensors
from trainer_client.grad_norms import GradNormProbe
from trainer_client.images import DEFAULT_RANGE, check_range
from trainer_client.log import flush_held
from trainer_client.queues import BoundedQueue
from trainer_client.sender import Sender, warn
from trainer_client.settings import DEFAULT_SERVER, resolve
from trainer_client.spool import Spool, default_root
from trainer_client.tensors import TENSOR_TYPES
from trainer_client.transport import HttpTransport, Transport

BATCH_KEYS = ("fake", "real")  # image batches: diversity summaries and sample grids
# How much may wait for the sender thread before run.log drops (and counts) what comes next.
# Only a sender that cannot keep up for long gets there (a server that is down does not: the
# sender spools to disk meanwhile); the bound keeps such a stall from eating the host's memory.
MAX_QUEUED_STEPS = 1_000_000
MAX_QUEUED_SAMPLES = 100  # image batches (copies, on their device) waiting to be encoded


def _json_safe(config) -> dict:
    try:
        return json.loads(json.dumps(dict(config or {}), default=str))
    except (TypeError, ValueError):
        return {"config": str(config)}


def stable_run_id(name: str, token: str | None = None) -> str:
    """The run id that resume=True uses for a name: the same name with the same credentials
    always means the same run.

    With a token (``token``, else ``GANWATCH_TOKEN``) the id ends in an HMAC-SHA256 of the name
    keyed by the token (96 bits): only someone holding the token can work it out from the
    name, so nobody else can guess the id, and it differs per token, hence per project. Without
    one (an open server, where every client may do everything anyway) it ends in the name's
    SHA-1, as it always did."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:40] or "run"
    token = resolve("token", token) or ""
    if token.strip():
        tail = hmac.new(token.strip().encode(), b"ganwatch resume id\0" + name.encode(),
                        hashlib.sha256).hexdigest()[:24]
        return f"{slug[:32].rstrip('-') or 'run'}-{tail}"  # at most 57 of the 64 characters
    return f"{slug}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """Everything a Run is made of. ``init()`` works it out from its arguments and the
    environment (GANWATCH_URL, GANWATCH_RUN_ID, ...); the defaults are init()'s."""

    name: str
    server: str = DEFAULT_SERVER
    run_id: str
    config: dict | None = None
    models: dict | None = None
    optimizers: dict | None = None
    sample_every: int = 500
    sample_count: int = 64
    diversity_samples: int = 64
    sample_range: tuple[float, float] = DEFAULT_RANGE  # what G's outputs mean: black..white
    grad_norm_every: int = 1
    flush_interval: float = 1.0
    max_batch: int = 2000
    spool_dir: Path
    exit_timeout: float = 30.0
    rules: dict | None = None
    checkin_interval: float | None = None
    loss: str | None = None  # the GAN's loss family, e.g. "wgan-gp" (the server's names)
    keys: dict | None = None  # {"d_loss": "my_d"}: the run's keys for the rules' roles
    record: str | Path | None = None
    offline: bool = False
    start_step: int = 0  # where the step counter starts (a continued run: past its last step)
    resuming: bool = False  # continuing an earlier run: its record is added to, not replaced
    transport: Transport | None = None  # None: HTTP to ``server``


class Run:
    """A run streamed to the server. ``log`` is an enqueue; the sender thread does the rest."""

    def __init__(self, options: RunOptions) -> None:
        run_id = options.run_id
        self.name = name = str(options.name)[:200] or "run"  # the server takes up to 200 chars
        self.id = run_id
        self.server = options.server.rstrip("/")
        self.url = f"{self.server}/runs/{run_id}"
        self.config = _json_safe(options.config)
        self.sample_every = max(0, int(options.sample_every))
        self.sample_count = max(1, int(options.sample_count))
        self.sample_range = check_range(options.sample_range) or DEFAULT_RANGE
        self.diversity_samples = max(2, int(options.diversity_samples))
        self.exit_timeout = options.exit_timeout
        self.flush_interval = options.flush_interval
        self.errors = 0
        self._step = int(options.start_step)
        self._max_batch = options.max_batch
        self._records = BoundedQueue(MAX_QUEUED_STEPS)
        self._samples = BoundedQueue(MAX_QUEUED_SAMPLES)
        self._pending_vectors: dict = {}
        self._finished = False
        self._pid = os.getpid()  # a forked child (a DataLoader worker) must not finish the run
        self._warned: set[str] = set()
        self.spool = Spool(Path(options.spool_dir) / run_id)
        if not self.spool.try_lock():
            warn(f"another process is writing run {run_id}; its spool {self.spool.dir} is shared")
        self.offline = offline = options.offline
        if offline:
            self.url = ""
        self.transport = options.transport or HttpTransport(self.server)
        checkin = options.checkin_interval
        body = protocol.run_body(run_id, name, self.config, options.rules,
                                 float(checkin) if checkin else None, options.loss,
                                 options.keys)
        recorder = None
        if options.record:
            from trainer_client.record import Recorder

            recorder = Recorder(options.record, {k: v for k, v in body.items() if k != "id"},
                                append=options.resuming)  # a resumed run adds to its record
        self._sender = Sender(run_id=run_id, transport=self.transport, spool=self.spool,
                              records=self._records, samples=self._samples,
                              flush_interval=options.flush_interval,
                              max_batch=options.max_batch, recorder=recorder, offline=offline)
        if not offline:
            self.spool.append(protocol.create_run(body))
        self._probes = []
        models = options.models or {}
        for net, optimizer in (options.optimizers or {}).items():
            self._probes.append(GradNormProbe(net, optimizer, models.get(net),
                                              every=options.grad_norm_every, sink=self))
        self._sender.start()
        atexit.register(self._at_exit)

    # -- the hot path ----------------------------------------------------------------------

    def log(self, step: int | None = None, **values) -> None:
        """Record values for a step. Numbers or tensors (any device); never syncs, never raises."""
        try:
            if step is None:
                step = self._step
            self._step = step + 1
            scalars = {}
            for key, value in values.items():
                kind = type(value)
                if kind is float or kind is int:
                    scalars[key] = float(value)
                elif kind in TENSOR_TYPES and not value.ndim:  # a 0-d tensor: kept on its device
                    scalars[key] = value.detach()
                elif value is not None:
                    self._other(key, value, step, scalars)
            if "diversity/fake" in scalars and "diversity/real" in scalars:
                scalars["diversity/ratio"] = scalars["diversity/fake"] / scalars["diversity/real"]
            vectors = None
            if self._pending_vectors:
                vectors = list(self._pending_vectors.values())
                self._pending_vectors.clear()
            if self._records.put((step, time.time(), scalars, vectors)) >= self._max_batch:
                self._sender.wake()
        except Exception as exc:
            self.note_error("log()", exc)

    def _other(self, key: str, value, step: int, scalars: dict) -> None:
        """Tensors, numpy values and image batches; a bad value is skipped, the rest kept."""
        try:
            if key in BATCH_KEYS and getattr(value, "ndim", 0) >= 2:
                self._batch(key, value, step, scalars)
            else:
                scalars[key] = tensors.summarise(value)
        except Exception as exc:
            self.note_error(f"log({key}=...)", exc)

    def _batch(self, key: str, batch, step: int, scalars: dict) -> None:
        if tensors.is_tensor(batch):
            d = tensors.diversity(batch, self.diversity_samples)
            if d is not None:
                scalars[f"diversity/{key}"] = d
        ndim = getattr(batch, "ndim", 0)
        if key == "fake" and self.sample_every and step % self.sample_every == 0 \
                and (ndim in (3, 4) or (ndim == 2 and batch.shape[1] == 2)):
            self.log_images(key, batch[: self.sample_count], step=step)

    def log_images(self, key: str, images, step: int | None = None, *,
                   value_range: tuple[float, float] | None = None,
                   normalize: bool = False) -> None:
        """Upload a PNG grid of an image batch (N x C x H x W) under ``key``, e.g. a fixed-noise
        grid or an interpolation sheet. ``value_range`` (lo, hi) is what black and white mean
        (default: the run's ``sample_range``, (-1, 1) for tanh output); values beyond it are
        clipped. ``normalize=True`` stretches each grid to its own min and max instead. The
        copy is taken now; encoding happens in the sender."""
        try:
            shown = None if normalize else check_range(value_range) or self.sample_range
            grid = images.detach().clone() if tensors.is_tensor(images) else images.copy()
            self._samples.put((self._step - 1 if step is None else step, time.time(), key, grid,
                               shown))
        except Exception as exc:
            self.note_error(f"log_images({key})", exc)

    # -- called by the gradient-norm probes (in optimizer.step) ----------------------------

    def wants_grad_norms(self, every: int) -> bool:
        return not self._finished and self._step % every == 0

    def add_vector(self, net: str, keys: list[str], vector) -> None:
        self._pending_vectors[net] = (keys, vector)

    def note_error(self, where: str, exc: Exception) -> None:
        self.errors += 1
        message = f"{where} failed ({type(exc).__name__}: {exc}); training continues"
        if message not in self._warned and len(self._warned) < 20:
            self._warned.add(message)
            warn(message)

    # -- the end ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Ask the sender to build and send what is queued now (it does not wait)."""
        self._sender.wake()

    def finish(self, timeout: float | None = None) -> None:
        """Send what is left (for at most ``timeout`` seconds), then say what could not be sent."""
        if self._finished or os.getpid() != self._pid:
            return
        self._finished = True
        try:
            atexit.unregister(self._at_exit)
            for probe in self._probes:
                probe.remove()
            finish = [] if self.offline else [protocol.finish(self.id)]
            self._sender.close(finish, self.exit_timeout if timeout is None else timeout)
            self._report()
        except Exception as exc:
            self.note_error("finish()", exc)
        finally:
            self.transport.close()

    def _report(self) -> None:
        flush_held()  # the repeated warnings held back: how many
        for queue, what in ((self._records, "steps"), (self._samples, "sample batches")):
            if queue.dropped:
                warn(f"{queue.dropped} {what} of run '{self.name}' were dropped: the sender "
                     f"thread fell more than {queue.capacity} {what} behind the training loop")
        n, points, samples = self.spool.totals()
        if n:
            what = f"{points} points" + (f", {samples} sample grids" if samples else "")
            if n - samples and not points:
                what = "the run's start or finish"
            reason = f": {self._sender.last_error}" if self._sender.last_error else ""
            warn(f"{n} requests ({what}) of run '{self.name}' were not sent to {self.server}"
                 f"{reason}. They are kept in {self.spool.dir} and will be sent by the next "
                 f"ganwatch client that starts here, or now with: ganwatch spool send "
                 f"{self.spool.dir}")
        elif self._sender.rejected:
            warn(f"{self._sender.rejected} batches were refused by the server; "
                 f"they are kept in {self.spool.dir / 'rejected'}")
        else:
            self.spool.remove_if_empty()
        self.spool.unlock()

    def _at_exit(self) -> None:
        self.finish()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc) -> None:
        self.finish()


class DisabledRun:
    """What ``init`` returns when GANWATCH_DISABLED=1: the same methods, doing nothing."""

    id = name = url = server = ""
    errors = 0

    def log(self, step: int | None = None, **values) -> None:
        pass

    def log_images(self, key: str, images, step: int | None = None, *,
                   value_range: tuple[float, float] | None = None,
                   normalize: bool = False) -> None:
        pass

    def flush(self) -> None:
        pass

    def finish(self, timeout: float | None = None) -> None:
        pass

    def __enter__(self) -> DisabledRun:
        return self

    def __exit__(self, *exc) -> None:
        pass


def _sample_range(value) -> tuple[float, float]:
    try:
        return check_range(value) or DEFAULT_RANGE
    except ValueError as exc:
        warn(f"sample_range: {exc}; the grids use {DEFAULT_RANGE}")
        return DEFAULT_RANGE


def init(name: str, *, models: dict | None = None, optimizers: dict | None = None,
         config: dict | None = None, server: str | None = None, run_id: str | None = None,
         resume: bool = False, sample_every: int = 500, sample_count: int = 64,
         diversity_samples: int = 64, sample_range: tuple[float, float] = DEFAULT_RANGE,
         grad_norm_every: int = 1, flush_interval: float | None = None,
         max_batch: int = 2000, spool_dir: str | Path | None = None,
         exit_timeout: float | None = None, rules: dict | None = None,
         checkin_interval: float | None = None, record: str | Path | None = None,
         offline: bool = False, loss: str | None = None,
         keys: dict | None = None) -> Run | DisabledRun:
    """Start streaming a run to the ganwatch server (``GANWATCH_URL``, default ``DEFAULT_SERVER``).

    ``models`` and ``optimizers`` map a network's name ("G", "D") to its module and optimizer:
    gradient norms are then measured at every optimizer step. ``run_id`` (or GANWATCH_RUN_ID)
    continues that run; ``resume=True`` continues the run of this name.

    ``rules`` tunes the server's rules for this run, ``{"mode_collapse": {"threshold": 0.3},
    "d_loss_spikes": False}`` (False silences a rule; settings the server refuses fall back to
    its defaults, with a warning). ``checkin_interval`` promises a point at least every so many
    seconds: the stalled-run alert fires after it plus a grace period.

    ``loss`` names the GAN's loss family, so the rules judge it by its own signs: "bce" (also
    "ns", minimax), "wgan", "wgan-gp", "hinge", "lsgan" or "r1" (StyleGAN); left out, the
    server infers it from what is logged. ``keys`` names the series that play the rules'
    roles when they are logged under names the server does not know: ``{"d_loss": "lossD_total",
    "d_real": "p_real"}`` (roles: d_loss, g_loss, d_real, d_fake, gp, r1). The PyTorch DCGAN
    example's, StyleGAN's and Lightning's names are known already.

    ``sample_range`` is what G's outputs mean for the sample grids: (-1, 1), tanh output, is
    drawn black to white; (0, 1) for a sigmoid G. It is the data's convention, never guessed
    from the values, so a G whose outputs sit near 0 is drawn grey and one that overshoots is
    clipped; ``log_images(..., normalize=True)`` stretches a grid to its own min and max.

    ``record`` also writes every logged step's scalars (gradient norms and diversity included)
    to a JSON Lines file, one step per line; ``offline=True`` only records, sending nothing.
    ``ganwatch replay FILE`` diagnoses a record later. Never raises.
    """
    if resolve("GANWATCH_DISABLED", warn=warn):
        return DisabledRun()
    try:
        server = resolve("server", server or None, warn=warn)
        explicit_id = resolve("run_id", run_id or None, warn=warn)
        run_id = explicit_id or (stable_run_id(name) if resume else secrets.token_hex(8))
        start_step = 0
        if (explicit_id or resume) and not offline:
            # Continuing a run: ask (briefly, before the loop starts) where its steps stopped.
            found = _existing_run(server, run_id)
            if found is None and resume and not explicit_id:
                run_id, found = _run_of_an_older_client(server, name, run_id)
            start_step = _next_step(found)
        return Run(RunOptions(
            name=name, server=server, run_id=run_id, config=config, models=models,
            optimizers=optimizers, sample_every=sample_every, sample_count=sample_count,
            diversity_samples=diversity_samples, sample_range=_sample_range(sample_range),
            grad_norm_every=grad_norm_every,
            flush_interval=resolve("flush_interval", flush_interval, warn=warn),
            max_batch=max_batch, spool_dir=Path(spool_dir) if spool_dir else default_root(),
            exit_timeout=resolve("exit_timeout", exit_timeout, warn=warn),
            rules=rules, checkin_interval=checkin_interval, record=record, offline=offline,
            loss=loss, keys=keys,
            start_step=start_step, resuming=bool(explicit_id or resume),
        ))
    except Exception as exc:
        warn(f"could not start ({type(exc).__name__}: {exc}); training continues unmonitored")
        return DisabledRun()


def _existing_run(server: str, run_id: str) -> dict | None:
    """The run as the server has it (asked briefly); None if unknown, not this token's, or the
    server is unreachable."""
    transport = HttpTransport(server, timeout=2.0, connect_timeout=1.0)
    try:
        return transport.get_json(protocol.run_path(run_id), timeout=2.0)
    finally:
        transport.close()


def _run_of_an_older_client(server: str, name: str, run_id: str) -> tuple[str, dict | None]:
    """Earlier clients made resume ids from the name alone, with a token too: a run of this
    name started by one of them, and visible to this token (its own project's), is continued
    rather than left behind. Otherwise the token-keyed ``run_id`` stays."""
    legacy = stable_run_id(name, token="")
    if legacy != run_id:
        found = _existing_run(server, legacy)
        if found is not None and found.get("name") == name:
            return legacy, found
    return run_id, None


def _next_step(run: dict | None) -> int:
    """Where a resumed run continues: one past its last stored step (0 if unknown)."""
    if run and run.get("last_step") is not None:
        return int(run["last_step"]) + 1
    return 0
