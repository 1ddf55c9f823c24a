"""The sender on the in-memory transport, no server process: batching, retry with backoff,
spooling while the server is away, catching up in order when it is back, refusals, the end of
a run; and a whole Run made from RunOptions on the same transport."""

from __future__ import annotations

import gzip
import inspect
import json
import math
import time

import pytest
import torch

import trainer_client
from trainer_client import protocol
from trainer_client.queues import BoundedQueue
from trainer_client.run import Run, RunOptions
from trainer_client.sender import Sender
from trainer_client.spool import Spool, read_message
from trainer_client.transport import InMemoryTransport, Outcome


def points_of(message) -> dict:
    """A points request's body, decoded as the server reads it."""
    assert message.path == "/api/v1/runs/r1/points", message.path
    return json.loads(gzip.decompress(message.body))


def steps_sent(transport: InMemoryTransport, key: str = "d_loss") -> list[int]:
    return [step for m in transport.delivered if m.path.endswith("/points")
            for step in points_of(m)["series"].get(key, {}).get("steps", [])]


def make_sender(tmp_path, transport, *, max_batch=3, flush_interval=60.0, adopt=False):
    records, samples = BoundedQueue(1000), BoundedQueue(10)
    spool = Spool(tmp_path / "spool" / "r1")
    sender = Sender(run_id="r1", transport=transport, spool=spool, records=records,
                    samples=samples, flush_interval=flush_interval, max_batch=max_batch,
                    adopt_orphans=adopt)
    return sender, records, spool


def log_steps(records: BoundedQueue, steps, **extra) -> None:
    for step in steps:
        records.put((step, 1000.0 + step, {"d_loss": 0.5 + step, **extra}, None))


def test_records_go_out_in_batches_of_max_batch_in_step_order(tmp_path):
    transport = InMemoryTransport()
    sender, records, spool = make_sender(tmp_path, transport, max_batch=3)
    log_steps(records, range(7))
    sender.build()
    assert len(spool.pending_files()) == 3  # 3 + 3 + 1 steps, each batch on disk first
    assert sender.drain() is True
    bodies = [points_of(m) for m in transport.delivered]
    assert [b["series"]["d_loss"]["steps"] for b in bodies] == [[0, 1, 2], [3, 4, 5], [6]]
    assert bodies[0]["series"]["d_loss"]["values"] == [0.5, 1.5, 2.5]
    assert bodies[0]["series"]["d_loss"]["wall_times"] == [1000.0, 1001.0, 1002.0]
    assert len({b["batch_id"] for b in bodies}) == 3
    assert [m.n_points for m in transport.delivered] == [3, 3, 1]
    assert spool.pending_files() == []


def test_tensors_and_gradient_norm_vectors_are_read_back_into_their_series(tmp_path):
    transport = InMemoryTransport()
    sender, records, _ = make_sender(tmp_path, transport, max_batch=10)
    records.put((0, 1.0, {"d_loss": torch.tensor(0.25), "g_loss": 2.0},
                 [(["grad_norm/D", "grad_norm/D/0"], torch.tensor([3.0, 4.0]))]))
    records.put((1, 2.0, {"d_loss": torch.tensor(float("nan")), "g_loss": math.inf}, None))
    sender.build()
    sender.drain()
    series = points_of(transport.delivered[0])["series"]
    assert series["d_loss"]["steps"] == [0, 1]
    assert series["d_loss"]["values"][0] == 0.25 and math.isnan(series["d_loss"]["values"][1])
    assert series["g_loss"]["values"] == [2.0, math.inf]  # non-finite values are data
    assert series["grad_norm/D"] == {"steps": [0], "values": [3.0], "wall_times": [1.0]}
    assert series["grad_norm/D/0"]["values"] == [4.0]


def test_an_unreachable_server_spools_and_backs_off_exponentially(tmp_path, capfd):
    transport = InMemoryTransport()
    transport.fail()  # down until recover()
    sender, records, spool = make_sender(tmp_path, transport)
    log_steps(records, range(5))
    sender.build()
    delays = []
    for _ in range(3):
        before = time.monotonic()
        assert sender.drain() is False
        delays.append(sender.retry_at - before)
    assert sender.failures == 3
    assert sender.last_error == InMemoryTransport.UNREACHABLE
    # 0.25 s x 2^failures, with jitter of x0.5 to x1.5
    for failures, delay in enumerate(delays, 1):
        base = 0.25 * 2 ** failures
        assert 0.5 * base <= delay <= 1.5 * base + 0.05
    assert len(spool.pending_files()) == 2  # nothing was lost: both batches wait on disk
    assert len(transport.requests) == 3 and transport.delivered == []
    # every attempt is the oldest batch again, unchanged (the same batch id: stored once)
    assert len({m.body for m in transport.requests}) == 1
    assert capfd.readouterr().err.count("cannot reach the server") == 1  # said once, not per try


def test_when_the_server_is_back_the_spool_catches_up_in_order(tmp_path, capfd):
    transport = InMemoryTransport()
    transport.fail()
    sender, records, spool = make_sender(tmp_path, transport)
    log_steps(records, range(4))
    sender.build()
    assert sender.drain() is False
    log_steps(records, range(4, 8))  # the loop goes on while the server is away
    sender.build()
    transport.recover()
    assert sender.drain() is True
    assert steps_sent(transport) == list(range(8))
    assert spool.pending_files() == []
    assert sender.failures == 0 and sender.retry_at == 0.0
    assert "reachable again" in capfd.readouterr().err


def test_a_refused_batch_is_kept_aside_and_the_next_ones_go_on(tmp_path, capfd):
    transport = InMemoryTransport()
    transport.refuse(detail="HTTP 413: too many points")
    sender, records, spool = make_sender(tmp_path, transport)
    log_steps(records, range(6))
    sender.build()
    assert sender.drain() is True
    assert sender.rejected == 1
    assert steps_sent(transport) == [3, 4, 5]
    kept = list((spool.dir / "rejected").glob("*.msg"))
    assert len(kept) == 1
    assert kept[0].with_suffix(".reason").read_text() == "HTTP 413: too many points\n"
    assert "refused a batch (HTTP 413: too many points)" in capfd.readouterr().err


def test_a_refused_config_is_dropped_from_the_run_and_the_rules_kept(tmp_path, capfd):
    transport = InMemoryTransport()
    transport.refuse(detail="HTTP 422: config too deep", locs=(("body", "config", "a"),))
    sender, _, spool = make_sender(tmp_path, transport)
    spool.append(protocol.create_run(protocol.run_body(
        "r1", "run", {"a": {"b": 1}}, {"d_loss_spikes": False})))
    assert sender.drain() is True
    sent = json.loads(transport.delivered[0].body)
    assert sent == {"id": "r1", "name": "run", "rules": {"d_loss_spikes": False}}
    assert sender.rejected == 0
    assert "refused this run's config" in capfd.readouterr().err


def test_the_thread_sends_while_running_and_the_finish_last(tmp_path):
    transport = InMemoryTransport()
    sender, records, _ = make_sender(tmp_path, transport, max_batch=2)
    sender.start()
    log_steps(records, range(4))
    sender.wake()
    assert transport.wait_for(lambda t: len(steps_sent(t)) == 4)
    log_steps(records, range(4, 5))  # logged after the thread's last build: close sends it
    sender.close([protocol.finish("r1")], timeout=10.0)
    assert steps_sent(transport) == [0, 1, 2, 3, 4]
    assert transport.delivered[-1].path == "/api/v1/runs/r1/finish"


def test_closing_against_a_dead_server_keeps_everything_in_the_spool(tmp_path):
    transport = InMemoryTransport()
    transport.fail()
    sender, records, spool = make_sender(tmp_path, transport)
    log_steps(records, range(3))
    sender.start()
    started = time.monotonic()
    sender.close([protocol.finish("r1")], timeout=0.5)
    assert time.monotonic() - started < 5.0  # bounded by the exit timeout, not hanging
    assert spool.totals() == (2, 3, 0)  # the batch of 3 points, and the finish behind it
    assert read_message(spool.pending_files()[-1]).path == "/api/v1/runs/r1/finish"
    assert sender.last_error == InMemoryTransport.UNREACHABLE


def test_a_new_sender_sends_what_an_earlier_client_left(tmp_path):
    left = Spool(tmp_path / "spool" / "old")
    left.append(protocol.finish("old"))
    transport = InMemoryTransport()
    sender, _, _ = make_sender(tmp_path, transport, adopt=True)
    sender.start()
    sender.close([], timeout=10.0)
    assert [m.path for m in transport.delivered] == ["/api/v1/runs/old/finish"]
    assert not left.dir.exists()


def test_the_bounded_queue_drops_and_counts_what_does_not_fit():
    queue = BoundedQueue(2)
    assert [queue.put(x) for x in "abc"] == [1, 2, 2]
    assert queue.dropped == 1
    assert queue.take(10) == ["a", "b"] and not queue
    assert queue.put("d") == 1 and queue.take(1) == ["d"]


def test_sender_statistics_cannot_be_set_from_outside(tmp_path):
    sender, _, _ = make_sender(tmp_path, InMemoryTransport())
    for name in ("failures", "retry_at", "last_error", "rejected", "dropped", "recording"):
        with pytest.raises(AttributeError):
            setattr(sender, name, 1)


def test_a_run_made_from_options_streams_through_an_injected_transport(tmp_path):
    transport = InMemoryTransport()
    run = Run(RunOptions(name="unit", run_id="r1", spool_dir=tmp_path / "spool",
                         config={"lr": 2e-4}, rules={"mode_collapse": {"threshold": 0.3}},
                         checkin_interval=5, transport=transport, flush_interval=60.0))
    for _ in range(3):
        run.log(d_loss=0.7)
    run.finish(timeout=10.0)
    paths = [m.path for m in transport.delivered]
    assert paths == ["/api/v1/runs", "/api/v1/runs/r1/points", "/api/v1/runs/r1/finish"]
    assert json.loads(transport.delivered[0].body) == {
        "id": "r1", "name": "unit", "config": {"lr": 2e-4},
        "rules": {"mode_collapse": {"threshold": 0.3}}, "checkin_interval": 5.0}
    assert steps_sent(transport) == [0, 1, 2]
    assert transport.closed
    assert not (tmp_path / "spool" / "r1").exists()  # all sent: the spool is gone


def test_run_options_default_to_what_init_defaults_to():
    init_defaults = {name: p.default for name, p in
                     inspect.signature(trainer_client.init).parameters.items()
                     if p.default is not inspect.Parameter.empty}
    options = RunOptions(name="n", run_id="i", spool_dir=".")
    for name, default in init_defaults.items():
        if hasattr(options, name) and default is not None:  # None: init reads the environment
            assert getattr(options, name) == default, name


def test_the_in_memory_transport_answers_as_scripted():
    transport = InMemoryTransport(resources={"/api/v1/runs/r1": {"last_step": 4}})
    message = protocol.finish("r1")
    transport.fail(times=1)
    transport.refuse(times=1, detail="HTTP 404: no such run")
    assert transport.send(message)[0] is Outcome.RETRY
    assert transport.send(message) == (Outcome.REJECTED, "HTTP 404: no such run")
    assert transport.send(message) == (Outcome.SENT, "")
    assert len(transport.requests) == 3 and transport.delivered == [message]
    assert transport.get_json(protocol.run_path("r1"), timeout=1.0) == {"last_step": 4}
    transport.fail()
    assert transport.get_json(protocol.run_path("r1"), timeout=1.0) is None
