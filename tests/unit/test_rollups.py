"""The pre-aggregated buckets behind long series reads: they always equal the points stored,
whether built batch by batch on ingest or by the migration from points stored before it."""

from __future__ import annotations

import math
import random

from alembic import command
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from monitor import migrate
from monitor.models import Point, point_rollups
from monitor.store import rollups
from monitor.store import series as series_store


def brute(points, level):
    """{bucket: (n, nonfinite, min, max)} straight from the points."""
    out = {}
    for step, value in points:
        n, bad, lo, hi = out.get(step // level, (0, 0, None, None))
        if value is None or not math.isfinite(value):
            out[step // level] = (n + 1, bad + 1, lo, hi)
        else:
            out[step // level] = (n + 1, bad, value if lo is None else min(lo, value),
                                  value if hi is None else max(hi, value))
    return out


def stored(session, sid, level):
    rows = session.execute(select(point_rollups.c.bucket, point_rollups.c.n,
                                  point_rollups.c.nonfinite, point_rollups.c.min_value,
                                  point_rollups.c.max_value)
                           .where(point_rollups.c.series_id == sid,
                                  point_rollups.c.level == level)).all()
    return {b: (n, bad, lo, hi) for b, n, bad, lo, hi in rows}


def make_points(n=20_000, seed=3):
    rng = random.Random(seed)
    steps = sorted(rng.sample(range(3 * n), n))
    values = [rng.gauss(0, 1) for _ in steps]
    for i in rng.sample(range(n), 30):
        values[i] = rng.choice([None, math.inf, -math.inf])
    return list(zip(steps, values))


def insert_points(conn, points, sid=1):
    conn.execute(text("INSERT INTO runs (id, name, config, status, created_at, updated_at) "
                      "VALUES ('r1', 'old run', '{}', 'running', :t, :t)"),
                 {"t": "2026-01-01 00:00:00"})
    conn.execute(text("INSERT INTO series (id, run_id, key) VALUES (:sid, 'r1', 'v')"),
                 {"sid": sid})
    conn.execute(text("INSERT INTO points (series_id, step, value, wall_time) "
                      "VALUES (:sid, :s, :v, 0)"),
                 [{"sid": sid, "s": s, "v": v} for s, v in points])


def test_the_migration_aggregates_points_stored_before_it(database_url):
    engine = create_engine(database_url)
    points = make_points()
    cfg = migrate.alembic_config(database_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        insert_points(conn, points)
    migrate.upgrade(engine)
    with Session(engine) as session:
        for level in rollups.LEVELS:
            assert stored(session, 1, level) == brute(points, level), level
        assert rollups.count_points(session, 1, 0, 10**9) == len(points)
        inside = [p for p in points if 1234 <= p[0] <= 45_678]
        assert rollups.count_points(session, 1, 1234, 45_678) == len(inside)
    engine.dispose()


def test_batches_merge_into_the_same_buckets_as_one_batch(tmp_path):
    """Ingest in uneven batches (buckets split across them) equals aggregating all at once."""
    engine = create_engine(f"sqlite:///{tmp_path / 'g.db'}")
    migrate.upgrade(engine)
    points = make_points(5_000, seed=11)
    rng = random.Random(5)
    with Session(engine) as session:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO runs (id, name, config, status, created_at, "
                              "updated_at) VALUES ('r1', 'r', '{}', 'running', :t, :t)"),
                         {"t": "2026-01-01 00:00:00"})
            conn.execute(text("INSERT INTO series (id, run_id, key) VALUES (1, 'r1', 'v')"))
        shuffled = points[:]
        rng.shuffle(shuffled)  # out of order too, as a resumed run may send
        i = 0
        while i < len(shuffled):  # bounded: i grows by at least 1 each pass
            size = rng.randint(1, 700)
            rollups.upsert(session, rollups.aggregate(
                (1, s, v, 0.0) for s, v in shuffled[i:i + size]))
            i += size
        session.commit()
        for level in rollups.LEVELS:
            assert stored(session, 1, level) == brute(points, level), level


def test_a_long_read_matches_the_points(tmp_path):
    """Through the store, as the API reads: count, ends, and exact extremes per bucket."""
    engine = create_engine(f"sqlite:///{tmp_path / 'g.db'}")
    migrate.upgrade(engine)
    points = make_points(30_000, seed=8)
    with engine.begin() as conn:
        insert_points(conn, points)
    with Session(engine) as session:
        rollups.upsert(session, rollups.aggregate((1, s, v, 0.0) for s, v in points))
        session.commit()
        data = series_store.read_series(session=session, run_id="r1", key="v", max_points=500)
        raw = session.execute(select(Point.step).where(Point.series_id == 1)).all()
    assert data.count == len(raw) == len(points) and data.downsampled
    width = data.bucket_steps
    assert width and width % rollups.LEVELS[0] == 0
    got = list(zip(data.steps, data.values))
    assert got[0][0] == points[0][0] and got[-1][0] == points[-1][0]
    for bucket, (_, _, lo, hi) in brute(points, width).items():
        values = [v for s, v in got if s // width == bucket and math.isfinite(v)]
        if lo is not None:
            assert min(values) == lo and max(values) == hi
    non_finite = sum(1 for _, v in points if v is None or not math.isfinite(v))
    assert sum(1 for _, v in got if not math.isfinite(v)) == non_finite
