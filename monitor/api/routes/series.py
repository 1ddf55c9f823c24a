import math
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from monitor import store
from monitor.api.deps import SessionDep, SettingsDep
from monitor.schemas import INT64_MAX, SeriesRead

router = APIRouter(prefix="/runs/{run_id}/series", tags=["series"])

_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def json_value(v: float) -> float | str:
    """JSON has no NaN or Infinity: write them as strings a browser can read."""
    if v != v:
        return "NaN"
    return _NON_FINITE.get(v, v)


@router.get("", response_model=SeriesRead)
def read_series(
    session: SessionDep,
    settings: SettingsDep,
    run_id: str,
    key: Annotated[list[str], Query(min_length=1, description="Series key; repeat for more.")],
    max_points: Annotated[int, Query(ge=3, description="Downsample above this.")] = 2000,
    min_step: Annotated[int | None, Query(ge=-INT64_MAX, le=INT64_MAX)] = None,
    max_step: Annotated[int | None, Query(ge=-INT64_MAX, le=INT64_MAX)] = None,
):
    """Series of a run, downsampled on the server into min/max buckets above `max_points`.

    The first and last points and every non-finite value are always kept. Buckets split the
    range evenly, or, on long ranges, are `bucket_steps` wide (a grid of the pre-aggregated
    buckets, starting at multiples of it), each holding its exact min and max. Non-finite values are
    written as the strings "NaN", "Infinity" and "-Infinity".
    """
    store.get_run(session=session, run_id=run_id)
    max_points = min(max_points, settings.max_series_points)
    out = []
    for k in key:
        data = store.read_series(session=session, run_id=run_id, key=k, max_points=max_points,
                                 min_step=min_step, max_step=max_step)
        out.append({
            "key": data.key, "steps": data.steps,
            "values": [json_value(v) for v in data.values],
            "wall_times": data.wall_times, "count": data.count, "downsampled": data.downsampled,
            "bucket_steps": data.bucket_steps,
        })
    # Built by hand and returned directly: re-validating 100k points costs more than it buys.
    return JSONResponse({"run_id": run_id, "series": out})
