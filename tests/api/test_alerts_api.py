"""Alerts and rules over the API of a real server (SQLite and PostgreSQL), fed by the real client:
rule overrides from init(rules=...), alerts with evidence and the recommended action, run
health in the runs list, acknowledgement, silencing, and bad settings refused with a detail."""

from __future__ import annotations

import uuid

import pytest

import trainer_client
from tests.support import wait_until


def alerts_of(api, run_id, **params) -> list[dict]:
    response = api.get("/api/v1/alerts", params={"run_id": run_id, **params})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def run_row(api, run_id) -> dict:
    runs = api.get("/api/v1/runs", params={"limit": 1000}).json()["data"]
    return next(r for r in runs if r["id"] == run_id)


def post_points(api, run_id, key, steps, values):
    response = api.post(f"/api/v1/runs/{run_id}/points", json={
        "batch_id": uuid.uuid4().hex, "series": {key: {"steps": steps, "values": values}}})
    assert response.status_code == 200, response.text


def test_streamed_collapse_raises_an_alert_the_runs_list_acks_and_resolution(
        server, api, spool_dir):
    # fast settings for this run: judged over 20 steps, firing after 10
    fast = {"window": 20, "warmup": 0, "for": 10, "clear_for": 20}
    run = trainer_client.init("alerting", server=server.url, flush_interval=0.05,
                              rules={"mode_collapse": fast, "d_loss_spikes": False},
                              checkin_interval=30)
    for step in range(200):
        run.log(step=step, **{"diversity/fake": 0.05 if step >= 100 else 1.0,
                              "diversity/real": 1.0, "d_loss": 1.0})
    run.flush()
    wait_until(lambda: api.get(f"/api/v1/runs/{run.id}").status_code == 200, what="the run")
    firing = wait_until(lambda: [a for a in alerts_of(api, run.id, status="firing")
                                 if a["rule"] == "mode_collapse"], what="the collapse alert")
    alert = firing[0]
    assert alert["severity"] == "critical"  # the median ratio 0.05 is below the critical 0.2
    assert 110 <= alert["fired_step"] <= 140 and alert["started_step"] >= 100
    assert alert["evidence"]["key"] == "diversity/ratio" and alert["evidence"]["median"] < 0.1
    assert "Minibatch discrimination (ganhacks #15)" in alert["action"]
    assert alert["url"] == f"/runs/{run.id}#alert-{alert['id']}"

    row = run_row(api, run.id)
    assert (row["health"], row["open_alerts"], row["checkin_interval"]) == ("critical", 1, 30)

    rules = api.get(f"/api/v1/runs/{run.id}/rules").json()
    assert rules["params"]["mode_collapse"]["window"] == 20
    assert rules["params"]["mode_collapse"]["threshold"] == 0.75  # not overridden: the default
    assert rules["silenced"] == ["d_loss_spikes"]
    assert rules["params"]["stalled"]["checkin_interval"] == 30

    acked = api.post(f"/api/v1/alerts/{alert['id']}/ack", json={"by": "ana"})
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "ana"
    assert api.get(f"/api/v1/alerts/{alert['id']}").json()["acknowledged_at"] is not None

    for step in range(200, 300):  # diversity comes back
        run.log(step=step, **{"diversity/fake": 1.0, "diversity/real": 1.0})
    run.finish()
    resolved = wait_until(lambda: alerts_of(api, run.id, status="resolved"), what="resolution")
    assert resolved[0]["id"] == alert["id"] and resolved[0]["resolved_step"] > 200
    assert resolved[0]["acknowledged_by"] == "ana"
    assert run_row(api, run.id)["health"] == "ok"
    events = api.get("/api/v1/alert-events", params={"run_id": run.id}).json()["data"]
    assert [(e["kind"], e["alert_id"]) for e in events] == [
        ("firing", alert["id"]), ("resolved", alert["id"])]


def test_rules_can_be_changed_silenced_and_reset_over_the_api(api):
    run_id = api.post("/api/v1/runs", json={"name": "tuned"}).json()["id"]
    changed = api.patch(f"/api/v1/runs/{run_id}/rules", json={"rules": {
        "d_loss_zero": {"threshold": 0.2, "for": 0}, "g_fooling_d": False}})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["overrides"] == {"d_loss_zero": {"threshold": 0.2, "for": 0}}
    assert body["silenced"] == ["g_fooling_d"]

    # the changed threshold applies to the next points: D loss at 0.1 now fires
    post_points(api, run_id, "d_loss", list(range(300)), [0.1] * 300)
    fired = alerts_of(api, run_id, status="firing")
    assert [a["rule"] for a in fired] == ["d_loss_zero"]
    assert fired[0]["threshold"] == 0.2 and fired[0]["severity"] == "warning"
    assert run_row(api, run_id)["health"] == "warning"

    reset = api.patch(f"/api/v1/runs/{run_id}/rules",
                      json={"rules": {"d_loss_zero": {"threshold": None}, "g_fooling_d": True}})
    assert reset.json()["overrides"] == {"d_loss_zero": {"for": 0}}
    assert reset.json()["silenced"] == []
    silenced = api.post(f"/api/v1/runs/{run_id}/rules/d_loss_variance/silence").json()
    assert silenced["silenced"] == ["d_loss_variance"]
    assert api.delete(f"/api/v1/runs/{run_id}/rules/d_loss_variance/silence").json()[
        "silenced"] == []

    catalogue = {r["name"]: r for r in api.get("/api/v1/rules").json()}
    assert catalogue["exploding_gradients"]["params"]["threshold"]["default"] == 100.0
    assert "over 100" in catalogue["exploding_gradients"]["sign"]
    assert set(catalogue) >= {"non_finite", "d_loss_zero", "exploding_gradients",
                              "d_loss_variance", "d_loss_spikes", "g_fooling_d",
                              "mode_collapse", "d_overpowering", "vanishing_g_gradient",
                              "stalled"}


@pytest.mark.parametrize(("rules", "says"), [
    ({"no_such_rule": {}}, "unknown rule 'no_such_rule'"),
    ({"mode_collapse": {"treshold": 0.3}}, "has no parameter 'treshold'"),
    ({"mode_collapse": {"threshold": "low"}}, "must be a number"),
    ({"mode_collapse": {"window": -5}}, "must not be negative"),
    ({"mode_collapse": {"severity": "page"}}, "must be one of warning, critical"),
    ({"mode_collapse": 3}, "must be an object of parameters or false"),
])
def test_bad_rule_settings_get_422_with_a_detail_and_change_nothing(api, rules, says):
    created = api.post("/api/v1/runs", json={"name": "bad-rules", "rules": rules})
    assert created.status_code == 422
    assert says in str(created.json()["detail"])

    run_id = api.post("/api/v1/runs", json={
        "name": "kept", "rules": {"mode_collapse": {"threshold": 0.4}}}).json()["id"]
    patched = api.patch(f"/api/v1/runs/{run_id}/rules", json={"rules": rules})
    assert patched.status_code == 422 and says in str(patched.json()["detail"])
    assert api.get(f"/api/v1/runs/{run_id}/rules").json()["overrides"] == {
        "mode_collapse": {"threshold": 0.4}}


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("post", "/api/v1/alerts/999999/ack", None, 404),
    ("get", "/api/v1/alerts/999999", None, 404),
    ("get", "/api/v1/runs/no-such-run/rules", None, 404),
    ("post", "/api/v1/runs/no-such-run/rules/mode_collapse/silence", None, 404),
    ("get", "/api/v1/alerts?status=exploded", None, 422),
    ("post", "/api/v1/runs", {"name": "x", "checkin_interval": -1}, 422),
])
def test_alert_and_rule_endpoints_refuse_bad_requests_with_a_detail(api, method, path, body,
                                                                     status):
    response = api.request(method.upper(), path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_client_with_rules_the_server_refuses_still_streams_with_the_defaults(
        server, api, spool_dir, capfd):
    run = trainer_client.init("typo", server=server.url, flush_interval=0.05,
                              rules={"mode_colapse": {"threshold": 0.3}})
    for step in range(20):
        run.log(step=step, d_loss=1.0)
    run.finish()
    stored = api.get(f"/api/v1/runs/{run.id}/series", params={"key": "d_loss"}).json()
    assert stored["series"][0]["steps"] == list(range(20))
    assert api.get(f"/api/v1/runs/{run.id}/rules").json()["overrides"] == {}
    err = capfd.readouterr().err
    assert "refused this run's rule settings" in err and "unknown rule 'mode_colapse'" in err


def test_a_batch_overlapping_stored_steps_is_judged_with_the_stored_points(api):
    """A resumed client re-sending steps it had sent (an overlap) is evaluated from the
    database, stored points and new ones together, as an in-order batch is from memory: the
    same alerts either way."""
    fast = {"mode_collapse": {"window": 20, "warmup": 0, "for": 10, "clear_for": 20}}
    ids = []
    for overlap in (False, True):
        run_id = api.post("/api/v1/runs", json={"name": f"overlap-{overlap}",
                                                "rules": fast}).json()["id"]
        ids.append(run_id)
        values = [1.0] * 100 + [0.05] * 100  # collapse from step 100
        post_points(api, run_id, "diversity/ratio", list(range(0, 120)), values[:120])
        lo = 110 if overlap else 120  # the second batch re-sends steps 110-119, or does not
        post_points(api, run_id, "diversity/ratio", list(range(lo, 200)), values[lo:])
    found = [[(a["rule"], a["status"], a["started_step"]) for a in alerts_of(api, run_id)]
             for run_id in ids]
    assert found[0] == found[1] and found[0][0][:2] == ("mode_collapse", "firing")
