import io
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from PIL import Image, UnidentifiedImageError

from monitor import metrics, store
from monitor.api.deps import SessionDep, SettingsDep
from monitor.schemas import INT64_MAX, BatchId, SamplePublic, SamplesPublic, SeriesKey

router = APIRouter(prefix="/runs/{run_id}/samples", tags=["samples"])

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(body: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, or a 415 that says why it is not one."""
    if not body.startswith(PNG_SIGNATURE):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            "the sample is not a PNG image (it lacks the PNG signature)")
    try:
        with Image.open(io.BytesIO(body)) as image:
            image.verify()
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            f"the sample is not a readable PNG image: {exc}") from exc


def sample_public(row) -> SamplePublic:
    return SamplePublic(id=row.id, run_id=row.run_id, key=row.key, step=row.step,
                        wall_time=row.wall_time, width=row.width, height=row.height,
                        url=f"/api/v1/runs/{row.run_id}/samples/{row.id}")


@router.post("", response_model=SamplePublic, status_code=status.HTTP_201_CREATED,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "image/png": {"schema": {"type": "string", "format": "binary"}}}}},
             responses={200: {"description": "Duplicate batch id: already stored"},
                        413: {"description": "Too large"}, 415: {"description": "Not a PNG"}})
async def upload_sample(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    run_id: str,
    step: Annotated[int, Query(ge=0, le=INT64_MAX)],
    key: Annotated[SeriesKey, Query()] = "fake",
    wall_time: float | None = None,
    batch_id: Annotated[BatchId | None, Query()] = None,
):
    """Upload a sample grid: the request body is the PNG itself (`Content-Type: image/png`)."""
    body = await request.body()
    if len(body) > settings.max_sample_bytes:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                            f"the sample has {len(body)} bytes; the limit is "
                            f"{settings.max_sample_bytes} (GANWATCH_MAX_SAMPLE_BYTES)")
    width, height = png_size(body)
    if width * height > settings.max_sample_pixels:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                            f"the sample is {width}x{height} = {width * height} pixels; the limit "
                            f"is {settings.max_sample_pixels} (GANWATCH_MAX_SAMPLE_PIXELS)")
    sample, duplicate = store.add_sample(
        session=session, run_id=run_id, key=key, step=step,
        wall_time=time.time() if wall_time is None else wall_time,
        width=width, height=height, png=body, batch_id=batch_id)
    if duplicate:
        return Response(status_code=status.HTTP_200_OK, content=b'{"duplicate": true}',
                        media_type="application/json")
    metrics.SAMPLES.inc()
    return sample_public(sample)


@router.get("", response_model=SamplesPublic)
def list_samples(
    session: SessionDep,
    run_id: str,
    key: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SamplesPublic:
    """A run's sample grids in step order (metadata; fetch each PNG from its `url`)."""
    rows, count = store.list_samples(session=session, run_id=run_id, key=key, limit=limit,
                                     offset=offset)
    return SamplesPublic(data=[sample_public(r) for r in rows], count=count)


@router.get("/{sample_id}", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def read_sample(session: SessionDep, run_id: str, sample_id: int) -> Response:
    """The PNG of one sample grid."""
    png = store.get_sample_png(session=session, run_id=run_id, sample_id=sample_id)
    return Response(png, media_type="image/png",
                    headers={"Cache-Control": "public, max-age=31536000, immutable"})
