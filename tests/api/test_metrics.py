"""Prometheus metrics at /metrics, read as Prometheus reads them (the text format, parsed by
prometheus_client's own parser), after real traffic: ingest, an alert, a webhook delivery."""

from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families

from tests.support import wait_until
from tests.support.receiver import Receiver


def scrape(api) -> dict[tuple[str, tuple], float]:
    r = api.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_ingest_alerts_deliveries_and_queues(api):
    receiver = Receiver()
    try:
        before = scrape(api)
        hook = api.post("/api/v1/webhooks", json={"url": receiver.url}).json()
        run_id = api.post("/api/v1/runs", json={"name": "metrics"}).json()["id"]
        body = {"batch_id": uuid.uuid4().hex,
                "series": {"d_loss": {"steps": [0, 1, 2], "values": [1.0, "NaN", 1.0]}}}
        assert api.post(f"/api/v1/runs/{run_id}/points", json=body).status_code == 200
        assert api.post(f"/api/v1/runs/{run_id}/points", json=body).json()["duplicate"]
        receiver.wait_for(1)
        wait_until(lambda: api.get(f"/api/v1/webhooks/{hook['id']}/deliveries")
                   .json()["data"][0]["status"] == "delivered", what="the delivery recorded")
        after = scrape(api)
    finally:
        receiver.close()
    grew = lambda name, **labels: value(after, name, **labels) - value(  # noqa: E731
        before, name, **labels)
    assert grew("ganwatch_points_ingested_total") == 3
    assert grew("ganwatch_batches_total", outcome="stored") == 1
    assert grew("ganwatch_batches_total", outcome="duplicate") == 1
    assert grew("ganwatch_alert_transitions_total", rule="non_finite", kind="firing") == 1
    assert grew("ganwatch_webhook_deliveries_total", outcome="delivered") >= 1
    # by route template, not by run id
    route = "/api/v1/runs/{run_id}/points"
    assert grew("ganwatch_http_requests_total", method="POST", route=route, status="200") == 2
    assert not any(run_id in str(labels) for _, labels in after)
    assert value(after, "ganwatch_database_up") == 1
    assert value(after, "ganwatch_runs", status="running") >= 1
    assert ("ganwatch_outbox_pending", ()) in after
    assert ("ganwatch_live_streams", ()) in after


def test_requests_refused_before_routing_are_counted_too(api):
    before = scrape(api)
    run_id = api.post("/api/v1/runs", json={"name": "bad-gzip"}).json()["id"]
    r = api.post(f"/api/v1/runs/{run_id}/points", content=b"not gzip",
                 headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 400
    after = scrape(api)
    # refused by the gzip middleware before any route ran: counted, under "unmatched"
    assert value(after, "ganwatch_http_requests_total", method="POST", route="unmatched",
                 status="400") - value(before, "ganwatch_http_requests_total", method="POST",
                                       route="unmatched", status="400") == 1


class RecordingWorker:
    """A running delivery worker as the outbox sees it (webhooks.outbox.Worker): records what
    it is handed."""

    accepting = True

    def __init__(self) -> None:
        self.handed: list[str] = []

    def lease_until(self, now):
        from datetime import timedelta
        return now + timedelta(seconds=40)

    def hand_off(self, items) -> None:
        self.handed.extend(delivery.body for delivery, _url, _secret in items)


def test_only_what_the_commit_kept_is_handed_to_the_worker(tmp_path):
    """The pipeline's last stage: deliveries that a savepoint (a failed rule evaluation) or a
    rollback took with them are not handed to the worker; the committed one is, leased."""
    import pytest

    from monitor import ingest, migrate
    from monitor.db import make_engine, make_sessionmaker
    from monitor.models import Delivery, Webhook
    from monitor.webhooks.outbox import Handoff

    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    migrate.upgrade(engine)
    sessions = make_sessionmaker(engine)
    worker = RecordingWorker()
    handoff = Handoff("http://127.0.0.1:1", worker)
    with sessions() as session:
        hook = Webhook(name="w", url="http://127.0.0.1:9/h", secret="s", format="generic",
                       min_severity="warning", enabled=True)
        session.add(hook)
        session.commit()
        effects = ingest.Effects(session, handoff)
        effects.outbox.add(hook, kind="firing", body="kept")
        with pytest.raises(RuntimeError):
            with session.begin_nested():
                effects.outbox.add(hook, kind="firing", body="lost")
                session.flush()
                raise RuntimeError("the evaluation failed")
        effects.commit()
        assert worker.handed == ["kept"]
        effects.outbox.add(hook, kind="firing", body="rolled")
        session.flush()
        session.rollback()
        effects.commit()
        assert worker.handed == ["kept"]
        stored = session.query(Delivery).all()
        assert [d.body for d in stored] == ["kept"]
        assert stored[0].leased_until is not None  # leased to the worker it was handed to
    engine.dispose()
