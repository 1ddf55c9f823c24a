"""The live stream (GET /api/v1/runs/{id}/events, server-sent events), read as a browser's
EventSource reads it: events with ids, resumed from Last-Event-ID. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid

import httpx


def new_run(api, name="live") -> str:
    r = api.post("/api/v1/runs", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def post(api, run_id, key, steps, values):
    body = {"batch_id": uuid.uuid4().hex, "series": {key: {"steps": steps, "values": values}}}
    r = api.post(f"/api/v1/runs/{run_id}/points", json=body)
    assert r.status_code == 200, r.text


def read_events(server, run_id: str, until: str, headers=None, params=None, timeout=30.0):
    """Events of one stream, in order, up to and including the first of type ``until``."""
    events = []
    with httpx.Client(base_url=server.url, timeout=timeout) as client, client.stream(
            "GET", f"/api/v1/runs/{run_id}/events", headers=headers or {},
            params=params or {}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = {}
        for line in response.iter_lines():  # bounded: the server ends a stream after 30 s
            if not line:
                if "event" in event:
                    events.append(event)
                    if event["event"] == until:
                        return events
                event = {}
                continue
            field, _, value = line.partition(": ")
            if field in ("id", "event"):
                event[field] = value
            elif field == "data":
                event["data"] = json.loads(value)
    raise AssertionError(f"the stream ended before a {until!r} event: {events}")


def test_new_points_and_alerts_arrive_and_a_reconnect_resumes(api, server):
    run_id = new_run(api)
    other = new_run(api, "someone-else")
    hello = read_events(server, run_id, "hello")[0]
    cursor = hello["id"]
    assert hello["data"] == {"cursor": cursor}

    post(api, other, "d_loss", [0, 1], [5.0, 5.0])       # another run's: not in this stream
    post(api, run_id, "d_loss", [0, 1, 2], [1.0, "NaN", 1.5])
    events = read_events(server, run_id, "points", headers={"Last-Event-ID": cursor})
    points = events[-1]
    assert points["data"]["series"] == {"d_loss": {"steps": [0, 1, 2],
                                                   "values": [1.0, "NaN", 1.5]}}
    # the NaN fired the non-finite rule in the same transaction: its alert follows
    events = read_events(server, run_id, "alerts", headers={"Last-Event-ID": cursor})
    alerts = events[-1]["data"]
    assert alerts["events"][0]["kind"] == "firing" and alerts["new_alerts"]

    # resumed after the points: only what came later
    post(api, run_id, "d_loss", [3], [2.0])
    later = read_events(server, run_id, "points", params={"cursor": points["id"]})
    assert later[-1]["data"]["series"] == {"d_loss": {"steps": [3], "values": [2.0]}}


def test_an_unknown_run_is_a_404_and_a_bad_cursor_starts_from_now(api, server):
    r = api.get("/api/v1/runs/no-such-run/events")
    assert r.status_code == 404 and r.json()["detail"]
    run_id = new_run(api)
    post(api, run_id, "g_loss", [0], [1.0])
    hello = read_events(server, run_id, "hello", headers={"Last-Event-ID": "not-a-cursor"})[0]
    post(api, run_id, "g_loss", [1], [1.0])
    events = read_events(server, run_id, "points", headers={"Last-Event-ID": hello["id"]})
    assert events[-1]["data"]["series"]["g_loss"]["steps"] == [1]


def test_a_cursor_past_any_id_the_database_can_hold_starts_from_now(api, server):
    """A Last-Event-ID beyond 64-bit ids (or written with digits int() reads but this server
    never writes) is not a cursor of ours: the stream starts from now and delivers what
    comes next, instead of a hello that echoes it and then silence."""
    run_id = new_run(api)
    post(api, run_id, "g_loss", [0], [1.0])
    for bad in (f"{2**64}.0.0.0", "1_0.0.0.0", "\u0661.0.0.0"):
        hello = read_events(server, run_id, "hello", params={"cursor": bad})[0]
        assert hello["id"] != bad
    post(api, run_id, "g_loss", [1], [2.0])
    events = read_events(server, run_id, "points", headers={"Last-Event-ID": hello["id"]})
    assert events[-1]["data"]["series"] == {"g_loss": {"steps": [1], "values": [2.0]}}


def test_a_one_point_spike_inside_a_large_burst_reaches_the_live_chart(api, server):
    run_id = new_run(api, "burst")
    cursor = read_events(server, run_id, "hello")[0]["id"]
    steps = list(range(10_000))
    values = [1.0 + (i % 7) * 0.01 for i in steps]
    values[4321] = 50.0                     # one finite spike, between evenly spaced picks
    values[7777] = -20.0                    # and one dip
    post(api, run_id, "d_loss", steps, values)
    got = read_events(server, run_id, "points", headers={"Last-Event-ID": cursor})
    series = got[-1]["data"]["series"]["d_loss"]
    assert len(series["steps"]) <= 2000     # thinned: the burst is over the live limit
    shown = dict(zip(series["steps"], series["values"]))
    assert shown[4321] == 50.0 and shown[7777] == -20.0
    assert shown[0] == values[0] and shown[9999] == values[9999]
