"""A real HTTP receiver on loopback for webhook tests: it records every request and answers
with the statuses it is told to, in order (then 200). A step of the plan is a status, a
(status, headers) pair, or a dict with "status" and any of "headers", "body" (bytes) and
"reason" (the status line's words)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    def json(self):
        return json.loads(self.body)


class Receiver:
    def __init__(self, port: int = 0, plan: list | None = None, host: str = "127.0.0.1") -> None:
        self.requests: list[Received] = []
        self.plan = list(plan or [])  # statuses (or (status, headers)) to answer, in order
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._cond:
                    step = receiver.plan.pop(0) if receiver.plan else 200
                    if isinstance(step, dict):
                        step = dict(step)
                    elif isinstance(step, tuple):
                        step = {"status": step[0], "headers": step[1]}
                    else:
                        step = {"status": step}
                    status, headers = step["status"], step.get("headers", {})
                    receiver.requests.append(Received(self.path, dict(self.headers), body,
                                                      status))
                    receiver._cond.notify_all()
                self.send_response(status, step.get("reason"))
                for key, value in headers.items():
                    self.send_header(key, value)
                reply = step.get("body")
                if reply is None:
                    reply = b"ok" if status < 400 else f"refused with {status}".encode()
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default 5 drops bursts of connections

        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, n: int, timeout: float = 30.0) -> list[Received]:
        """Block until at least n requests have arrived (bounded by timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the receiver got {len(self.requests)} requests in "
                                         f"{timeout}s, not {n}")
                self._cond.wait(left)
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
