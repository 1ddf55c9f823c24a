import io
import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from PIL import Image, UnidentifiedImageError

from monitor import metrics
from monitor.api.deps import SessionDep, SettingsDep, require
from monitor.auth import Role
from monitor.schemas import INT64_MAX, BatchId, SamplePublic, SamplesPublic, SeriesKey
from monitor.store import samples as sample_store

router = APIRouter(prefix="/runs/{run_id}/samples", tags=["samples"])

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _too_many_pixels(width: int, height: int, max_pixels: int) -> HTTPException:
    return HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                         f"the sample is {width}x{height} = {width * height} pixels; the limit "
                         f"is {max_pixels} (GANWATCH_MAX_SAMPLE_PIXELS)")


def png_size(body: bytes, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) of a PNG, or a 415 that says why it is not one; a 413 when its header
    claims more than ``max_pixels`` pixels, read from the header before anything is decoded."""
    if not body.startswith(PNG_SIGNATURE):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            "the sample is not a PNG image (it lacks the PNG signature)")
    # the first chunk is IHDR: length 13, then width and height as 32-bit big-endian integers
    header = body[8:24]
    if len(header) < 16 or header[4:8] != b"IHDR":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            "the sample is not a readable PNG image (its first chunk is not "
                            "IHDR)")
    width, height = int.from_bytes(header[8:12], "big"), int.from_bytes(header[12:16], "big")
    if not (width and height):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            f"the sample is not a readable PNG image ({width}x{height} pixels)")
    if max_pixels is not None and width * height > max_pixels:
        raise _too_many_pixels(width, height, max_pixels)
    try:
        with Image.open(io.BytesIO(body)) as image:
            image.verify()
            return image.size
    except Image.DecompressionBombError as exc:  # PIL's own limit, if lower than ours
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                            f"the sample is too large to decode: {exc}") from exc
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
                        413: {"description": "Too large"}, 415: {"description": "Not a PNG"}},
             dependencies=[Depends(require(Role.ingest))])
async def upload_sample(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    run_id: str,
    step: Annotated[int, Query(ge=0, le=INT64_MAX)],
    key: Annotated[SeriesKey, Query()] = "fake",
    wall_time: Annotated[float | None, Query(
        allow_inf_nan=False, description="seconds since the epoch, finite; the server's clock "
                                         "if omitted")] = None,
    batch_id: Annotated[BatchId | None, Query()] = None,
):
    """Upload a sample grid: the request body is the PNG itself (`Content-Type: image/png`)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "image/png":  # also what a cross-site form or no-cors fetch cannot send
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            "a sample is a PNG image sent with 'Content-Type: image/png', "
                            + (f"not {media_type[:100]!r}" if media_type else "which is missing"))
    body = await request.body()
    if len(body) > settings.max_sample_bytes:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                            f"the sample has {len(body)} bytes; the limit is "
                            f"{settings.max_sample_bytes} (GANWATCH_MAX_SAMPLE_BYTES)")
    width, height = png_size(body, settings.max_sample_pixels)
    sample, duplicate = sample_store.add_sample(
        session=session, run_id=run_id, key=key, step=step,
        wall_time=time.time() if wall_time is None else wall_time,
        width=width, height=height, png=body, batch_id=batch_id)
    if duplicate:
        return Response(status_code=status.HTTP_200_OK, content=b'{"duplicate": true}',
                        media_type="application/json")
    metrics.SAMPLES.inc()
    return sample_public(sample)


@router.get("", response_model=SamplesPublic, dependencies=[Depends(require(Role.read))])
def list_samples(
    session: SessionDep,
    run_id: str,
    key: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SamplesPublic:
    """A run's sample grids in step order (metadata; fetch each PNG from its `url`)."""
    rows, count = sample_store.list_samples(session=session, run_id=run_id, key=key, limit=limit,
                                            offset=offset)
    return SamplesPublic(data=[sample_public(r) for r in rows], count=count)


@router.get("/{sample_id}", response_class=Response,
            responses={200: {"content": {"image/png": {}}}},
            dependencies=[Depends(require(Role.read))])
def read_sample(session: SessionDep, run_id: str, sample_id: int) -> Response:
    """The PNG of one sample grid."""
    png = sample_store.get_sample_png(session=session, run_id=run_id, sample_id=sample_id)
    # never changes, but is this browser's to keep, not a shared cache's (a private run's)
    return Response(png, media_type="image/png",
                    headers={"Cache-Control": "private, max-age=31536000, immutable"})
