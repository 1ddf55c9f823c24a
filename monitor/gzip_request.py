"""ASGI middleware: inflate gzip request bodies and refuse bodies over a size limit.

The client compresses its batches (JSON of floats shrinks 3-5x); FastAPI only knows plain bodies.
Inflation streams: each chunk is inflated no further than the bytes left under the limit, so a
gzip bomb costs at most the limit (and a 413), never its inflated size. A request that will be
refused for want of a token never gets here (monitor/guard.py authenticates first); routes open
to anyone (the sign-in) get a small limit of their own from the guard (``MAX_BODY_KEY``).
"""

from __future__ import annotations

import json
import zlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _TooLarge(Exception):
    pass


class _BadGzip(Exception):
    pass


async def reply(send: Send, status: int, detail: str, headers: dict | None = None) -> None:
    """An error answered by a middleware, before any route: ``{"detail": ...}`` as JSON."""
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           (b"x-content-type-options", b"nosniff")]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


MAX_BODY_KEY = "ganwatch.max_body_bytes"  # a scope key: this request's own, smaller limit


class GzipRequestMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        encoding = headers.get(b"content-encoding", b"").lower()
        if encoding not in (b"", b"identity", b"gzip"):
            await reply(send, 415, f"unsupported Content-Encoding '{encoding.decode()}'; "
                                    "send gzip or an uncompressed body")
            return
        limit = min(scope.get(MAX_BODY_KEY, self.max_body_bytes), self.max_body_bytes)
        too_large = (f"request body over {limit} bytes" + (
            " (GANWATCH_MAX_BODY_BYTES)" if limit == self.max_body_bytes else " on this route"))
        declared = headers.get(b"content-length", b"")
        if encoding != b"gzip" and declared.isdigit() and int(declared) > limit:
            await reply(send, 413, too_large)  # refused before a byte of it is read
            return
        try:
            body = await self._read(receive, gzip=encoding == b"gzip", limit=limit)
        except _TooLarge:
            await reply(send, 413, too_large)
            return
        except _BadGzip as exc:
            await reply(send, 400, f"Content-Encoding is gzip but the body is not: {exc}")
            return
        new_headers = [(k, v) for k, v in scope["headers"]
                       if k not in (b"content-encoding", b"content-length")]
        new_headers.append((b"content-length", str(len(body)).encode()))
        scope = dict(scope, headers=new_headers)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive, *, gzip: bool, limit: int) -> bytes:
        inflater = zlib.decompressobj(wbits=47) if gzip else None  # 47: gzip or zlib header
        parts: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            if inflater is not None:
                try:
                    chunk = inflater.decompress(chunk, limit + 1 - size)
                except zlib.error as exc:
                    raise _BadGzip(str(exc)) from exc
                if inflater.unconsumed_tail:
                    raise _TooLarge
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            parts.append(chunk)
        if inflater is not None and not inflater.eof and size > 0:
            raise _BadGzip("the gzip stream is truncated")
        return b"".join(parts)
