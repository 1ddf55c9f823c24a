from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from monitor import __version__
from monitor.api.deps import SessionDep, public
from monitor.schemas import Health

router = APIRouter(prefix="/health", tags=["health"])


@router.get("", response_model=Health, responses={503: {"description": "Database unreachable"}},
            dependencies=[Depends(public)])
def health(session: SessionDep):
    """Whether the server and its database answer."""
    dialect = session.get_bind().dialect.name
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return JSONResponse(status_code=503, content={
            "status": "unavailable", "version": __version__, "database": dialect,
            "detail": f"database unreachable: {type(exc).__name__}"})
    return Health(status="ok", version=__version__, database=dialect)
