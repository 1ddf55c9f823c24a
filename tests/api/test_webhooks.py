"""Webhooks, end to end against a real HTTP receiver on loopback and a real server (SQLite and
PostgreSQL): a failing run is delivered once firing and once resolved, signed; retries,
refusals and a restart with the receiver down; the subscriptions API and the CLI."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import datetime

import pytest

from monitor.webhooks import sign, verify_headers, verify_signature
from tests.support import ROOT, ServerProcess, free_port, fresh_postgres_database, wait_until
from tests.support.receiver import Receiver

FAST = {"GANWATCH_WEBHOOK_RETRY_BASE": "0.05", "GANWATCH_WEBHOOK_POLL_INTERVAL": "0.05"}
COLLAPSE_RULES = {"mode_collapse": {"window": 10, "warmup": 0, "for": 5, "clear_for": 10}}


@contextmanager
def database(kind: str):
    if kind == "sqlite":
        yield None
    else:
        with fresh_postgres_database() as url:
            yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def hook_server(request, tmp_path):
    """A server of the test's own (fast retries), which the test may kill and restart."""
    with database(request.param) as url:
        proc = ServerProcess(data_dir=tmp_path / "server", database_url=url, env=FAST).start()
        yield proc
        proc.stop()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def add_hook(api, url, **settings) -> dict:
    response = api.post("/api/v1/webhooks", json={"url": url, **settings})
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(api, hook_id, **params) -> list[dict]:
    response = api.get(f"/api/v1/webhooks/{hook_id}/deliveries", params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def post(api, run_id, key, start, values):
    response = api.post(f"/api/v1/runs/{run_id}/points", json={
        "batch_id": uuid.uuid4().hex,
        "series": {key: {"steps": list(range(start, start + len(values))), "values": values}}})
    assert response.status_code == 200, response.text


def test_failing_run_is_delivered_once_firing_and_once_resolved_signed(hook_server, receiver):
    with hook_server.client() as api:
        hook = add_hook(api, receiver.url, name="team", secret="s3cret-s3cret")
        run_id = api.post("/api/v1/runs", json={"name": "webhooked",
                                                "rules": COLLAPSE_RULES}).json()["id"]
        post(api, run_id, "diversity/ratio", 0, [1.0] * 20 + [0.1] * 40)
        [firing] = receiver.wait_for(1)
        post(api, run_id, "diversity/ratio", 60, [1.0] * 40)
        firing, resolved = receiver.wait_for(2)
        wait_until(lambda: all(d["status"] == "delivered" for d in deliveries(api, hook["id"])),
                   what="both deliveries recorded")
        log = deliveries(api, hook["id"])
        alert = api.get("/api/v1/alerts", params={"run_id": run_id}).json()["data"][0]

    assert len(receiver.requests) == 2 and len(log) == 2
    assert [d["attempts"] for d in log] == [1, 1]
    for request in (firing, resolved):
        delivery = request.headers["X-Ganwatch-Delivery"]
        assert verify_signature("s3cret-s3cret", request.headers["X-Ganwatch-Signature"],
                                request.body, delivery_id=delivery)
        assert not verify_signature("wrong-secret", request.headers["X-Ganwatch-Signature"],
                                    request.body, delivery_id=delivery)
        assert verify_headers("s3cret-s3cret", request.headers, request.body)
        assert request.headers["webhook-id"] == delivery
    assert firing.headers["X-Ganwatch-Delivery"] != resolved.headers["X-Ganwatch-Delivery"]

    body = firing.json()
    assert (body["version"], body["status"], body["event"], body["receiver"]) == (
        "1", "firing", "firing", "team")
    [item] = body["alerts"]
    assert item["labels"] == {"alertname": "mode_collapse", "severity": "critical",
                              "run_id": run_id, "run_name": "webhooked"}
    assert item["annotations"]["summary"] == "Mode collapse"
    assert "Minibatch discrimination (ganhacks #15)" in item["annotations"]["action"]
    assert item["fingerprint"] == alert["fingerprint"] and item["step"] == alert["fired_step"]
    assert item["generatorURL"] == f"{hook_server.url}/runs/{run_id}#alert-{alert['id']}"
    assert item["endsAt"] == "0001-01-01T00:00:00Z"
    assert datetime.fromisoformat(item["startsAt"].replace("Z", "+00:00"))
    assert item["evidence"]["key"] == "diversity/ratio"

    done = resolved.json()
    assert (done["status"], done["event"]) == ("resolved", "resolved")
    assert done["alerts"][0]["fingerprint"] == alert["fingerprint"]
    assert done["alerts"][0]["step"] == alert["resolved_step"]
    assert done["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"


def test_a_5xx_is_retried_until_delivered_and_a_4xx_is_not(hook_server):
    flaky = Receiver(plan=[500, 503, (429, {"Retry-After": "1"}), 200])
    refusing = Receiver(plan=[400])
    try:
        with hook_server.client() as api:
            retried = add_hook(api, flaky.url)
            refused = add_hook(api, refusing.url)
            assert api.post(f"/api/v1/webhooks/{retried['id']}/test").status_code == 202
            assert api.post(f"/api/v1/webhooks/{refused['id']}/test").status_code == 202
            requests = flaky.wait_for(4)
            wait_until(lambda: deliveries(api, retried["id"])[0]["status"] == "delivered",
                       what="the retried delivery")
            wait_until(lambda: deliveries(api, refused["id"])[0]["status"] == "failed",
                       what="the refused delivery")
            [ok] = deliveries(api, retried["id"])
            [bad] = deliveries(api, refused["id"])
        assert [r.status for r in requests] == [500, 503, 429, 200]
        assert len({r.headers["X-Ganwatch-Delivery"] for r in requests}) == 1  # one delivery
        assert ok["attempts"] == 4 and [a["status_code"] for a in ok["log"]] == [
            500, 503, 429, 200]
        at = [datetime.fromisoformat(a["at"].replace("Z", "+00:00")) for a in ok["log"]]
        assert (at[3] - at[2]).total_seconds() >= 1.0  # Retry-After: 1 was honoured
        assert ok["next_attempt_at"] is None and ok["delivered_at"]

        assert len(refusing.requests) == 1  # not retried
        assert bad["attempts"] == 1 and bad["last_status_code"] == 400
        # the log says what happened in its own words, never what the receiver's body said
        assert bad["last_error"] == "HTTP 400 Bad Request"
        assert "refused with" not in str(bad) and "refused with" not in str(ok)
        assert bad["log"][0]["status_code"] == 400
    finally:
        flaky.close()
        refusing.close()


def test_pending_deliveries_survive_a_server_restart_with_the_receiver_down(hook_server):
    port = free_port()  # nothing listens here yet
    with hook_server.client() as api:
        hook = add_hook(api, f"http://127.0.0.1:{port}/hook")
        api.post(f"/api/v1/webhooks/{hook['id']}/test")
        wait_until(lambda: deliveries(api, hook["id"])[0]["attempts"] >= 1,
                   what="a failed first attempt")
        [pending] = deliveries(api, hook["id"])
    assert pending["status"] == "pending" and pending["last_status_code"] is None
    assert "Connect" in pending["last_error"] and pending["next_attempt_at"]

    hook_server.kill()
    hook_server.start()
    receiver = Receiver(port=port)
    try:
        # a kill that lands during a retry leaves the delivery leased to the dead process:
        # the new one sends it once that lease (the attempt timeout + 30 s) runs out
        [request] = receiver.wait_for(1, timeout=90)
        with hook_server.client() as api:
            wait_until(lambda: deliveries(api, hook["id"])[0]["status"] == "delivered",
                       what="delivery after the restart")
            [done] = deliveries(api, hook["id"])
        assert request.headers["X-Ganwatch-Delivery"] == pending["uuid"]
        assert request.json()["event"] == "test"
        assert done["attempts"] >= 2 and done["log"][-1]["status_code"] == 200
        assert len(receiver.requests) == 1
    finally:
        receiver.close()


def test_filters_choose_which_alerts_a_webhook_gets(hook_server, receiver):
    other = Receiver()
    try:
        with hook_server.client() as api:
            run_id = api.post("/api/v1/runs", json={"name": "filtered", "rules": {
                **COLLAPSE_RULES, "mode_collapse": {**COLLAPSE_RULES["mode_collapse"],
                                                    "critical": 0.0}}}).json()["id"]
            critical_only = add_hook(api, other.url, min_severity="critical")
            for_other_rule = add_hook(api, other.url, rules=["d_loss_zero"])
            for_other_run = add_hook(api, other.url, run_ids=["some-other-run"])
            disabled = add_hook(api, other.url, enabled=False)
            everything = add_hook(api, receiver.url)
            post(api, run_id, "diversity/ratio", 0, [1.0] * 20 + [0.3] * 40)  # a warning
            receiver.wait_for(1)
            api.post(f"/api/v1/webhooks/{everything['id']}/test")  # a marker behind it
            receiver.wait_for(2)
            for hook in (critical_only, for_other_rule, for_other_run, disabled):
                assert deliveries(api, hook["id"]) == []
        assert receiver.requests[0].json()["alerts"][0]["labels"]["severity"] == "warning"
        assert other.requests == []
    finally:
        other.close()


@pytest.mark.parametrize("fmt", ["slack", "discord"])
def test_slack_and_discord_bodies_carry_the_same_facts(hook_server, receiver, fmt):
    with hook_server.client() as api:
        add_hook(api, receiver.url, format=fmt)
        run_id = api.post("/api/v1/runs", json={"name": "chat",
                                                "rules": COLLAPSE_RULES}).json()["id"]
        post(api, run_id, "diversity/ratio", 0, [1.0] * 20 + [0.1] * 40)
        [request] = receiver.wait_for(1)
    body = request.json()
    text = str(body)
    assert "[FIRING] Mode collapse in run chat at step" in text
    assert "ganhacks #15" in text and f"/runs/{run_id}#alert-" in text and "critical" in text
    if fmt == "slack":
        assert body["text"].startswith("[FIRING]") and body["blocks"][0]["type"] == "header"
    else:
        assert body["content"].startswith("[FIRING]") and body["embeds"][0]["color"] == 0xD62728


def test_subscriptions_api_never_returns_the_secret_and_refuses_bad_settings(hook_server):
    with hook_server.client() as api:
        created = add_hook(api, "http://127.0.0.1:9/hook", name="ops")
        assert len(created["secret"]) >= 32  # generated, shown once
        listed = api.get("/api/v1/webhooks").json()["data"]
        one = api.get(f"/api/v1/webhooks/{created['id']}").json()
        assert "secret" not in one and all("secret" not in h for h in listed)
        changed = api.patch(f"/api/v1/webhooks/{created['id']}",
                            json={"enabled": False, "secret": "rotated-secret",
                                  "rules": ["mode_collapse"]})
        assert changed.status_code == 200 and "secret" not in changed.json()
        assert (changed.json()["enabled"], changed.json()["rules"]) == (False, ["mode_collapse"])
        for body, says in [({"url": "ftp://x"}, "url"), ({"url": "http://x", "format": "teams"},
                                                          "format"),
                           ({"url": "http://x", "rules": ["nope"]}, "unknown rule 'nope'"),
                           ({"url": "http://x", "secret": "short"}, "secret"),
                           ({"url": "http://x", "min_severity": "info"}, "min_severity")]:
            response = api.post("/api/v1/webhooks", json=body)
            assert response.status_code == 422 and says in str(response.json()["detail"])
        assert api.patch(f"/api/v1/webhooks/{created['id']}",
                         json={"url": None}).status_code == 422
        assert api.get("/api/v1/webhooks/999999").status_code == 404
        assert api.get(f"/api/v1/webhooks/{created['id']}/deliveries",
                       params={"status": "lost"}).status_code == 422
        assert api.delete(f"/api/v1/webhooks/{created['id']}").status_code == 204
        assert api.get(f"/api/v1/webhooks/{created['id']}").status_code == 404


def ganwatch(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganwatch", *map(str, argv)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_cli_adds_lists_tests_and_removes_webhooks(hook_server, receiver):
    server = ["--server", hook_server.url]
    added = ganwatch("webhook", "add", receiver.url, "--secret", "cli-secret-123",
                     "--format", "generic", "--min-severity", "critical",
                     "--rule", "mode_collapse", "--rule", "non_finite", *server)
    assert added.returncode == 0, added.stderr
    hook_id = int(added.stdout.split("webhook ")[1].split()[0])
    listed = ganwatch("webhook", "list", *server)
    assert receiver.url in listed.stdout and "critical" in listed.stdout
    assert "mode_collapse,non_finite" in listed.stdout and "cli-secret-123" not in listed.stdout
    assert ganwatch("webhook", "test", hook_id, *server).returncode == 0
    [request] = receiver.wait_for(1)
    assert verify_signature("cli-secret-123", request.headers["X-Ganwatch-Signature"],
                            request.body, delivery_id=request.headers["X-Ganwatch-Delivery"])
    with hook_server.client() as api:
        wait_until(lambda: deliveries(api, hook_id)[0]["status"] == "delivered",
                   what="the test delivery")
    log = ganwatch("webhook", "log", hook_id, *server)
    assert "delivered" in log.stdout and "200" in log.stdout
    assert ganwatch("webhook", "remove", hook_id, *server).returncode == 0
    gone = ganwatch("webhook", "remove", hook_id, *server)
    assert gone.returncode == 1 and f"unknown webhook {hook_id}" in gone.stderr
    bad = ganwatch("webhook", "add", "not-a-url", *server)
    assert bad.returncode == 1 and bad.stderr.startswith("ganwatch: error:")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_verify_signature_rejects_wrong_secret_changed_body_and_old_timestamps():
    body = b'{"version": "1", "status": "firing"}'
    now = time.time()
    one = "delivery-one"
    header = sign("secret-one", one, body, timestamp=int(now))
    assert verify_signature("secret-one", header, body, delivery_id=one, now=now)
    assert not verify_signature("secret-two", header, body, delivery_id=one, now=now)
    assert not verify_signature("secret-one", header, body + b" ", delivery_id=one, now=now)
    assert not verify_signature("secret-one", header, body, delivery_id="delivery-two",
                                now=now)  # the id is signed too
    assert not verify_signature("secret-one", header, body, delivery_id=None, now=now)
    assert not verify_signature("secret-one", header, body, delivery_id=one,
                                now=now + 301)  # stale
    assert verify_signature("secret-one", header, body, delivery_id=one, now=now + 299)
    assert not verify_signature("secret-one", header, body, delivery_id=one, tolerance=10,
                                now=now + 11)
    assert not verify_signature("secret-one", header, body, delivery_id=one,
                                now=now - 301)  # from the future
    tampered_time = header.replace(f"t={int(now)}", f"t={int(now) + 1}")
    assert not verify_signature("secret-one", tampered_time, body, delivery_id=one, now=now)
    for broken in ("", "t=abc,v1=00", "v1=00", f"t={int(now)}", None):
        assert not verify_signature("secret-one", broken, body, delivery_id=one, now=now)
    rotated = header + ",v1=" + "0" * 64  # a second signature (rotation) does not hurt
    assert verify_signature("secret-one", rotated, body, delivery_id=one, now=now)


def test_retries_stop_when_a_delivery_is_older_than_the_max_age(tmp_path):
    failing = Receiver(plan=[500] * 1000)
    server = ServerProcess(data_dir=tmp_path / "server",
                           env={**FAST, "GANWATCH_WEBHOOK_MAX_AGE": "1"}).start()
    try:
        with server.client() as api:
            hook = add_hook(api, failing.url)
            api.post(f"/api/v1/webhooks/{hook['id']}/test")
            wait_until(lambda: deliveries(api, hook["id"])[0]["status"] == "expired",
                       what="the delivery to expire")
            [expired] = deliveries(api, hook["id"])
        assert expired["attempts"] >= 2 and expired["last_status_code"] == 500
        assert expired["next_attempt_at"] is None and expired["delivered_at"] is None
        assert len(failing.requests) == expired["attempts"]
    finally:
        server.stop()
        failing.close()


def test_an_allow_list_keeps_webhooks_to_the_hosts_it_names(tmp_path, receiver):
    server = ServerProcess(data_dir=tmp_path / "server",
                           env={"GANWATCH_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}).start()
    try:
        with server.client() as api:
            refused = api.post("/api/v1/webhooks", json={"url": "http://localhost:9/hook"})
            assert refused.status_code == 422
            assert "GANWATCH_WEBHOOK_ALLOWED_HOSTS" in refused.json()["detail"]
            hook = add_hook(api, receiver.url)  # 127.0.0.1: allowed
            moved = api.patch(f"/api/v1/webhooks/{hook['id']}",
                              json={"url": "http://169.254.169.254/latest"})
            assert moved.status_code == 422
            assert api.get(f"/api/v1/webhooks/{hook['id']}").json()["url"] == receiver.url
    finally:
        server.stop()


def test_this_process_sends_its_own_deliveries_at_once_without_polling(tmp_path, receiver):
    """The outbox hands what a transaction committed to this process's worker: with the poll
    an hour away, the test delivery and a firing alert still reach the receiver."""
    proc = ServerProcess(data_dir=tmp_path / "server",
                         env={**FAST, "GANWATCH_WEBHOOK_POLL_INTERVAL": "3600"}).start()
    try:
        with proc.client() as api:
            hook = add_hook(api, receiver.url, rules=["non_finite"])
            assert api.post(f"/api/v1/webhooks/{hook['id']}/test").status_code == 202
            [test] = receiver.wait_for(1, timeout=20)
            assert test.json()["event"] == "test"
            run_id = api.post("/api/v1/runs", json={"name": "nan"}).json()["id"]
            post(api, run_id, "loss/d", 0, [0.5, "NaN", "NaN"])
            _, firing = receiver.wait_for(2, timeout=20)
            assert firing.json()["event"] == "firing"
            assert firing.json()["alerts"][0]["labels"]["alertname"] == "non_finite"
    finally:
        proc.stop()
