"""One settings object for the server, read from ``GANWATCH_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GANWATCH_", extra="ignore")

    host: str = "127.0.0.1"
    # open | required | auto (open on a loopback address, required otherwise): monitor/auth.py
    auth: Literal["auto", "open", "required"] = "auto"
    port: int = Field(8765, ge=0, le=65535)
    data_dir: Path = Path(".ganwatch")
    # Empty means "SQLite file under data_dir"; any SQLAlchemy URL otherwise.
    database_url: str = ""
    # A gzip body is inflated up to this many bytes; anything bigger is refused with 413.
    max_body_bytes: int = Field(64 * 1024 * 1024, gt=0)
    max_sample_bytes: int = Field(16 * 1024 * 1024, gt=0)
    # A sample grid's pixels (width x height): PNG compresses a huge blank image to little.
    max_sample_pixels: int = Field(4096 * 4096, gt=0)
    # Points in one ingest request, and distinct series keys per run.
    max_batch_points: int = Field(1_000_000, gt=0)
    max_series_per_run: int = Field(10_000, gt=0)
    # Largest number of points a series read may return, whatever max_points asks for.
    max_series_points: int = Field(100_000, gt=0)
    # How often the server looks for runs that stopped reporting (the stalled rule).
    stall_check_interval: float = Field(10.0, gt=0)
    log_level: str = "info"
    # The server's address as users reach it, for links in webhook messages (default: the
    # address it listens on).
    public_url: str = ""
    # Webhook delivery: how often the outbox is polled, each attempt's timeout, the backoff
    # (base doubling per attempt, up to max) and how long a delivery is retried at all.
    webhook_poll_interval: float = Field(0.1, gt=0)
    webhook_timeout: float = Field(10.0, gt=0)
    webhook_retry_base: float = Field(1.0, gt=0)
    webhook_retry_max: float = Field(300.0, gt=0)
    webhook_max_age: float = Field(86400.0, gt=0)
    # Hosts webhooks may point at, comma-separated (e.g. "hooks.slack.com,discord.com");
    # empty: any. On a shared server, set it: a webhook is a request the server makes for you.
    webhook_allowed_hosts: str = ""

    def webhook_host_allowed(self, url: str) -> bool:
        allowed = {h.strip().lower().strip("[]") for h in self.webhook_allowed_hosts.split(",")
                   if h.strip()}
        if not allowed:
            return True
        from urllib.parse import urlsplit

        try:
            host = (urlsplit(url).hostname or "").lower()
        except ValueError:
            return False
        return host in allowed

    # The dashboard's live stream: how often it looks for new data, and how long one stream
    # lasts before the browser reconnects (resuming where it was).
    live_poll_interval: float = Field(0.5, gt=0)
    live_stream_seconds: float = Field(30.0, gt=0)

    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ganwatch.db').resolve()}"
