"""Two server processes on one PostgreSQL database, as replicas behind a load balancer: an alert
fires once and is delivered once, concurrent batches of one run are evaluated one at a time,
and a live stream on one replica sees what the other ingested."""

from __future__ import annotations

import threading
import uuid

import pytest

from tests.api.test_live import read_events
from tests.support import ServerProcess, fresh_postgres_database, wait_until
from tests.support.receiver import Receiver

pytestmark = pytest.mark.postgres


@pytest.fixture
def replicas(tmp_path):
    with fresh_postgres_database() as url:
        a = ServerProcess(data_dir=tmp_path / "a", database_url=url).start()
        b = ServerProcess(data_dir=tmp_path / "b", database_url=url).start()
        try:
            yield a, b
        finally:
            a.stop()
            b.stop()


def batch(steps, values):
    return {"batch_id": uuid.uuid4().hex, "series": {"d_loss": {"steps": steps,
                                                                "values": values}}}


def test_an_alert_fires_once_and_is_delivered_once_across_replicas(replicas):
    a, b = replicas
    receiver = Receiver()
    try:
        with a.client() as api_a, b.client() as api_b:
            api_a.post("/api/v1/webhooks", json={"url": receiver.url}).raise_for_status()
            run_id = api_a.post("/api/v1/runs", json={
                "name": "replicated", "rules": {"non_finite": {"clear_for": 100_000}}}).json()["id"]
            # 40 batches of one run, 20 through each replica at once, NaN from step 200 on:
            # both replicas evaluate the run concurrently
            errors = []

            def send(api, chunks):
                for lo in chunks:
                    steps = list(range(lo, lo + 10))
                    values = [1.0 if s < 200 else "NaN" for s in steps]
                    r = api.post(f"/api/v1/runs/{run_id}/points", json=batch(steps, values))
                    if r.status_code != 200:
                        errors.append(r.text)

            threads = [threading.Thread(target=send, args=(api_a, range(0, 400, 20))),
                       threading.Thread(target=send, args=(api_b, range(10, 400, 20)))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []
            receiver.wait_for(1)
            alerts = api_b.get("/api/v1/alerts", params={"run_id": run_id}).json()["data"]
            assert [(x["rule"], x["status"]) for x in alerts] == [("non_finite", "firing")]
            events = api_b.get("/api/v1/alert-events", params={"run_id": run_id}).json()["data"]
            assert [e["kind"] for e in events] == ["firing"]
            hook = api_a.get("/api/v1/webhooks").json()["data"][0]
            wait_until(lambda: [d["status"] for d in api_b.get(
                f"/api/v1/webhooks/{hook['id']}/deliveries").json()["data"]] == ["delivered"],
                what="the one delivery recorded as delivered")
        # give both workers every chance to send a second copy: a test event through each
        # replica arrives, and still only one firing delivery came
        with a.client() as api_a, b.client() as api_b:
            api_a.post(f"/api/v1/webhooks/{hook['id']}/test").raise_for_status()
            api_b.post(f"/api/v1/webhooks/{hook['id']}/test").raise_for_status()
        received = receiver.wait_for(3)
        kinds = sorted(r.json()["event"] for r in received)
        assert kinds == ["firing", "test", "test"]
        ids = [r.headers["X-Ganwatch-Delivery"] for r in received]
        assert len(set(ids)) == 3
    finally:
        receiver.close()


def test_a_live_stream_on_one_replica_sees_what_the_other_ingested(replicas):
    a, b = replicas
    with a.client() as api_a:
        run_id = api_a.post("/api/v1/runs", json={"name": "seen-across"}).json()["id"]
    hello = read_events(b, run_id, "hello")[0]
    with a.client() as api_a:
        api_a.post(f"/api/v1/runs/{run_id}/points",
                   json=batch([0, 1, 2], [0.5, 0.6, 0.7])).raise_for_status()
    events = read_events(b, run_id, "points", headers={"Last-Event-ID": hello["id"]})
    assert events[-1]["data"]["series"] == {"d_loss": {"steps": [0, 1, 2],
                                                       "values": [0.5, 0.6, 0.7]}}


def test_postgres_notify_wakes_a_stream_on_the_other_replica_at_once(tmp_path):
    """With polling all but off (every 60 s), points ingested through replica A reach a stream
    on replica B within seconds: B was woken by A's NOTIFY."""
    import json

    import httpx

    env = {"GANWATCH_LIVE_POLL_INTERVAL": "60"}
    with fresh_postgres_database() as url:
        a = ServerProcess(data_dir=tmp_path / "a", database_url=url, env=env).start()
        b = ServerProcess(data_dir=tmp_path / "b", database_url=url, env=env).start()
        try:
            with a.client() as api_a:
                run_id = api_a.post("/api/v1/runs", json={"name": "notified"}).json()["id"]
            # a read timeout of 5 s: a stream that waited for its next poll (60 s, or a 10 s
            # keepalive) would fail here
            with httpx.Client(base_url=b.url, timeout=httpx.Timeout(5.0)) as client, \
                    client.stream("GET", f"/api/v1/runs/{run_id}/events") as stream:
                lines = stream.iter_lines()
                event = None
                for line in lines:  # bounded by the read timeout
                    if line.startswith("event: hello"):
                        break
                with a.client() as api_a:
                    api_a.post(f"/api/v1/runs/{run_id}/points",
                               json=batch([5, 6], [0.25, 0.5])).raise_for_status()
                for line in lines:
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "points":
                        data = json.loads(line[6:])
                        assert data["series"] == {"d_loss": {"steps": [5, 6],
                                                             "values": [0.25, 0.5]}}
                        break
                else:
                    raise AssertionError("the stream ended without the points")
        finally:
            a.stop()
            b.stop()
