"""Series reads are bucketed on the server: a spike or a NaN is never sampled away."""

import math
import random

import pytest

from monitor.store.rollups import LEVELS
from tests.support import series


def make_series(n=5000, seed=7):
    rng = random.Random(seed)
    steps = list(range(0, 3 * n, 3))  # not contiguous: buckets are by step range, not by index
    values = [math.sin(s / 50.0) + rng.gauss(0, 0.1) for s in steps]
    for i in rng.sample(range(1, n - 1), 12):
        values[i] = rng.choice([math.nan, math.inf, -math.inf])
    values[1234] = 50.0  # a spike
    return steps, values


def wire(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


@pytest.fixture
def stored(api):
    run_id = api.post("/api/v1/runs", json={"name": "downsample"}).json()["id"]
    steps, values = make_series()
    for start in range(0, len(steps), 2000):
        body = {"batch_id": f"b{start}", "series": {"v": {
            "steps": steps[start:start + 2000],
            "values": [wire(v) for v in values[start:start + 2000]]}}}
        assert api.post(f"/api/v1/runs/{run_id}/points", json=body).status_code == 200
    return run_id, steps, values


def test_small_reads_are_exact(api, stored):
    run_id, steps, values = stored
    data = series(api, run_id, "v", max_points=len(steps))
    assert data["downsampled"] is False
    assert data["steps"] == steps
    assert data["values"] == [wire(v) for v in values]


@pytest.mark.parametrize("max_points", [50, 202, 1000, 3000, 4000])  # 4000: raw, even split
def test_downsampling_keeps_ends_non_finite_and_bucket_extremes(api, stored, max_points):
    run_id, steps, values = stored
    data = series(api, run_id, "v", max_points=max_points)
    assert data["downsampled"] is True and data["count"] == len(steps)
    got = dict(zip(data["steps"], data["values"]))
    assert data["steps"] == sorted(data["steps"])
    # First and last points.
    assert got[steps[0]] == wire(values[0]) and got[steps[-1]] == wire(values[-1])
    # Every non-finite value, at its step.
    non_finite = {s: wire(v) for s, v in zip(steps, values) if not math.isfinite(v)}
    assert {s: got.get(s) for s in non_finite} == non_finite
    # Each bucket's min and max (as documented: buckets split the step range evenly, or, read
    # from the pre-aggregated buckets, form a grid `bucket_steps` wide).
    lo, span = steps[0], steps[-1] - steps[0] + 1
    if data["bucket_steps"] is None:
        n_buckets = (max_points - 2) // 2
        bucket_of = lambda s: (s - lo) * n_buckets // span  # noqa: E731
    else:
        n_buckets = (max_points - 4) // 2 + 1
        bucket_of = lambda s: s // data["bucket_steps"]  # noqa: E731
    buckets: dict[int, list[float]] = {}
    for s, v in zip(steps, values):
        if math.isfinite(v):
            buckets.setdefault(bucket_of(s), []).append(v)
    assert len(buckets) <= n_buckets
    returned_by_bucket: dict[int, list[float]] = {}
    for s, v in got.items():
        if isinstance(v, float):
            returned_by_bucket.setdefault(bucket_of(s), []).append(v)
    for b, vs in buckets.items():
        assert min(vs) in returned_by_bucket[b] and max(vs) in returned_by_bucket[b]
    assert 50.0 in data["values"]  # the spike survives
    # No more than two points per bucket, plus the ends and the non-finite values.
    assert len(data["steps"]) <= 2 * n_buckets + 2 + len(non_finite)


def test_pre_aggregated_reads_are_used_on_long_ranges_and_match_the_points(api, stored):
    run_id, steps, values = stored
    # 15,000 steps into 24 buckets: the rollups answer, on a grid of whole stored buckets
    data = series(api, run_id, "v", max_points=50)
    assert data["bucket_steps"] is not None and data["bucket_steps"] % LEVELS[0] == 0
    # a zoomed range too: its ends are partial stored buckets, read from the points
    data = series(api, run_id, "v", max_points=50, min_step=1001, max_step=9998)
    inside = [(s, v) for s, v in zip(steps, values) if 1001 <= s <= 9998]
    assert data["count"] == len(inside) and data["bucket_steps"] is not None
    got = dict(zip(data["steps"], data["values"]))
    assert got[inside[0][0]] == wire(inside[0][1]) and got[inside[-1][0]] == wire(inside[-1][1])
    width = data["bucket_steps"]
    for b in {s // width for s, _ in inside}:
        vs = [v for s, v in inside if s // width == b and math.isfinite(v)]
        returned = [v for s, v in got.items() if s // width == b and isinstance(v, float)]
        assert min(vs) in returned and max(vs) in returned
    assert all(1001 <= s <= 9998 for s in data["steps"])


def test_step_range_reads(api, stored):
    run_id, steps, values = stored
    data = series(api, run_id, "v", min_step=300, max_step=330, max_points=1000)
    assert data["steps"] == [s for s in steps if 300 <= s <= 330]


def test_max_points_too_small_is_a_422(api, stored):
    run_id, _, _ = stored
    response = api.get(f"/api/v1/runs/{run_id}/series", params={"key": "v", "max_points": 1})
    assert response.status_code == 422 and response.json()["detail"]
