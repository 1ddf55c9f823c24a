from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import JSONResponse

from monitor.api.deps import SessionDep, SettingsDep, require
from monitor.auth import Role
from monitor.encoding import json_number
from monitor.schemas import INT64_MAX, SeriesRead
from monitor.store import runs as run_store
from monitor.store import series as series_store

router = APIRouter(prefix="/runs/{run_id}/series", tags=["series"])


@router.get("", response_model=SeriesRead, dependencies=[Depends(require(Role.read))])
def read_series(
    session: SessionDep,
    settings: SettingsDep,
    run_id: str,
    key: Annotated[list[str], Query(min_length=1, description="Series key; repeat for more "
                                    "(at most GANWATCH_MAX_SERIES_KEYS, 32 by default).")],
    max_points: Annotated[int, Query(ge=3, description="Downsample above this (per key; "
                                     "times the number of keys at most "
                                     "GANWATCH_MAX_SERIES_POINTS, 100,000 by default).")] = 2000,
    min_step: Annotated[int | None, Query(ge=-INT64_MAX, le=INT64_MAX)] = None,
    max_step: Annotated[int | None, Query(ge=-INT64_MAX, le=INT64_MAX)] = None,
):
    """Series of a run, downsampled on the server into min/max buckets above `max_points`.

    The first and last points and every non-finite value are always kept. Buckets split the
    range evenly, or, on long ranges, are `bucket_steps` wide (a grid of the pre-aggregated
    buckets, starting at multiples of it), each holding its exact min and max. Non-finite values are
    written as the strings "NaN", "Infinity" and "-Infinity".
    """
    if len(key) > settings.max_series_keys:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            f"{len(key)} keys in one read; the limit is "
                            f"{settings.max_series_keys} (GANWATCH_MAX_SERIES_KEYS): read them "
                            "in several requests")
    if max_points * len(key) > settings.max_series_points:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            f"max_points={max_points} for {len(key)} key(s) asks for "
                            f"{max_points * len(key)} points; the limit is "
                            f"{settings.max_series_points} points per read "
                            "(GANWATCH_MAX_SERIES_POINTS)")
    run_store.get_run(session=session, run_id=run_id)
    out = []
    for k in key:
        # points read one by one: at most about max_series_points for the whole request
        data = series_store.read_series(
            session=session, run_id=run_id, key=k, max_points=max_points, min_step=min_step,
            max_step=max_step, raw_limit=settings.max_series_points // len(key))
        out.append({
            "key": data.key, "steps": data.steps,
            "values": [json_number(v) for v in data.values],
            # finite since ingest refuses others; a time stored before that still writes
            "wall_times": [json_number(w) for w in data.wall_times],
            "count": data.count, "downsampled": data.downsampled,
            "bucket_steps": data.bucket_steps,
        })
    # Built by hand and returned directly: re-validating 100k points costs more than it buys.
    return JSONResponse({"run_id": run_id, "series": out})
