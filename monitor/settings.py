"""One settings object for the server, read from ``GANWATCH_*`` environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def _port(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 5


def _host_name(host_header: str) -> str | None:
    """The host of a Host header ("name", "name:port", "[v6]:port"), lower-case, without the
    port and brackets; None when it is not one."""
    value = host_header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1:]
        if end < 0 or (rest and not (rest[0] == ":" and _port(rest[1:]))):
            return None
        return value[1:end] or None
    name, sep, port = value.partition(":")
    if sep and not _port(port):  # a bare IPv6 address is not a Host header either
        return None
    return name.rstrip(".") or None  # "localhost." is localhost


def _host_entry(entry: str) -> str:
    """A host of GANWATCH_ALLOWED_HOSTS: a name or address, brackets optional, no port."""
    return entry.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")


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
    # A series read: at most this many keys, and max_points times the keys at most
    # max_series_points (a 422 naming the limit otherwise).
    max_series_keys: int = Field(32, gt=0)
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
    # Where webhooks may point, comma-separated host names, IP addresses and CIDR ranges (e.g.
    # "hooks.slack.com,discord.com,10.1.2.0/24"); empty: any host. Listed addresses/ranges may
    # be loopback or private even when authentication is on; link-local and cloud metadata
    # addresses never are (monitor/webhooks/targets.py). A webhook is a request the server
    # makes for you.
    webhook_allowed_hosts: str = ""

    # How long a dashboard sign-in lasts (seconds; the session cookie's max-age too).
    session_ttl: float = Field(7 * 86400.0, gt=0, le=400 * 86400.0)
    # Host names (the Host header) this server answers besides loopback names and the host of
    # public_url, comma-separated; "*": any. Anything else is refused (DNS rebinding) by an
    # open server, and by one that requires tokens when this is set (monitor/guard.py).
    allowed_hosts: str = ""

    @cached_property
    def own_host_names(self) -> frozenset[str]:
        """The names of this server besides loopback ones: GANWATCH_ALLOWED_HOSTS (``*``: any),
        the listen address, GANWATCH_PUBLIC_URL's host. Worked out once (it is asked of every
        request)."""
        names = {_host_entry(h) for h in self.allowed_hosts.split(",") if h.strip()}
        listen = self.host.strip().lower().strip("[]")
        if listen not in ("", "0.0.0.0", "::"):
            names.add(listen)
        if self.public_url:
            try:
                public = urlsplit(self.public_url).hostname
            except ValueError:
                public = None
            if public:
                names.add(public.lower())
        return frozenset(names)

    def host_allowed(self, host_header: str) -> bool:
        """Whether a request's Host header names this server (monitor/guard.py)."""
        host = _host_name(host_header)
        if host is None:
            return False
        return host in _LOOPBACK_NAMES or "*" in self.own_host_names or (
            host in self.own_host_names)

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
