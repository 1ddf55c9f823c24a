from fastapi import APIRouter, Depends, HTTPException, status

from monitor import ingest, metrics
from monitor.api.deps import HandoffDep, SessionDep, SettingsDep, require
from monitor.auth import Role
from monitor.schemas import IngestResult, PointsBatch

router = APIRouter(prefix="/runs/{run_id}/points", tags=["points"])


@router.post("", response_model=IngestResult, dependencies=[Depends(require(Role.ingest))])
def ingest_points(session: SessionDep, settings: SettingsDep, handoff: HandoffDep, run_id: str,
                  batch: PointsBatch) -> IngestResult:
    """Store a batch of points (the body may be gzip-compressed: `Content-Encoding: gzip`).

    A batch whose `batch_id` was stored before is acknowledged and not stored again.
    """
    n_points = sum(len(cols.steps) for cols in batch.series.values())
    if n_points > settings.max_batch_points:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                            f"the batch has {n_points} points; the limit is "
                            f"{settings.max_batch_points} per request "
                            "(GANWATCH_MAX_BATCH_POINTS): send it in smaller batches")
    accepted, duplicate = ingest.ingest_points(session=session, run_id=run_id, batch=batch,
                                               max_series=settings.max_series_per_run,
                                               handoff=handoff)
    metrics.POINTS.inc(accepted)
    metrics.BATCHES.labels("duplicate" if duplicate else "stored").inc()
    return IngestResult(batch_id=batch.batch_id, accepted=accepted, duplicate=duplicate)
