from fastapi import APIRouter

from monitor import metrics, store
from monitor.api.deps import SessionDep
from monitor.schemas import IngestResult, PointsBatch

router = APIRouter(prefix="/runs/{run_id}/points", tags=["points"])


@router.post("", response_model=IngestResult)
def ingest_points(session: SessionDep, run_id: str, batch: PointsBatch) -> IngestResult:
    """Store a batch of points (the body may be gzip-compressed: `Content-Encoding: gzip`).

    A batch whose `batch_id` was stored before is acknowledged and not stored again.
    """
    accepted, duplicate = store.ingest_points(session=session, run_id=run_id, batch=batch)
    metrics.POINTS.inc(accepted)
    metrics.BATCHES.labels("duplicate" if duplicate else "stored").inc()
    return IngestResult(batch_id=batch.batch_id, accepted=accepted, duplicate=duplicate)
