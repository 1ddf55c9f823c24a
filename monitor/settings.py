"""One settings object for the server, read from ``GANWATCH_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GANWATCH_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    data_dir: Path = Path(".ganwatch")
    # Empty means "SQLite file under data_dir"; any SQLAlchemy URL otherwise.
    database_url: str = ""
    # A gzip body is inflated up to this many bytes; anything bigger is refused with 413.
    max_body_bytes: int = Field(64 * 1024 * 1024, gt=0)
    max_sample_bytes: int = Field(16 * 1024 * 1024, gt=0)
    # Largest number of points a series read may return, whatever max_points asks for.
    max_series_points: int = Field(100_000, gt=0)
    # How often the server looks for runs that stopped reporting (the stalled rule).
    stall_check_interval: float = Field(10.0, gt=0)
    log_level: str = "info"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ganwatch.db').resolve()}"
