"""Sample grids (PNG): stored, listed, read."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.errors import NotFound
from monitor.models import Sample
from monitor.notify import notify_run
from monitor.store.points import claim_batch, touch_run
from monitor.store.runs import get_run


def add_sample(*, session: Session, run_id: str, key: str, step: int, wall_time: float,
               width: int, height: int, png: bytes,
               batch_id: str | None) -> tuple[Sample | None, bool]:
    """Store a PNG sample grid; (None, True) when its batch id was already stored."""
    get_run(session=session, run_id=run_id)
    if batch_id is not None and not claim_batch(session=session, run_id=run_id,
                                                 batch_id=batch_id, kind="sample", n_points=0):
        session.rollback()
        return None, True
    sample = Sample(run_id=run_id, key=key, step=step, wall_time=wall_time, width=width,
                    height=height, png=png)
    session.add(sample)
    touch_run(session=session, run_id=run_id, last_step=None)
    notify_run(session, run_id)
    session.commit()
    return sample, False


# A sample grid without its PNG bytes, as lists and the live stream return it.
SAMPLE_COLUMNS = (Sample.id, Sample.run_id, Sample.key, Sample.step, Sample.wall_time,
                  Sample.width, Sample.height)


def list_samples(*, session: Session, run_id: str, key: str | None, limit: int,
                 offset: int) -> tuple[list, int]:
    """A run's samples (without their PNG bytes), in step order."""
    get_run(session=session, run_id=run_id)
    where = [Sample.run_id == run_id]
    if key is not None:
        where.append(Sample.key == key)
    rows = session.execute(
        select(*SAMPLE_COLUMNS).where(*where).order_by(Sample.step, Sample.id)
        .limit(limit).offset(offset)
    ).all()
    total = session.scalar(select(func.count()).select_from(Sample).where(*where)) or 0
    return list(rows), total


def get_sample_png(*, session: Session, run_id: str, sample_id: int) -> bytes:
    """The PNG bytes of one sample, or NotFound."""
    png = session.scalar(select(Sample.png).where(Sample.run_id == run_id, Sample.id == sample_id))
    if png is None:
        raise NotFound(f"run '{run_id}' has no sample {sample_id}")
    return png
