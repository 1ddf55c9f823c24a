"""How the client treats a server that answers errors: a real HTTP receiver scripts the answers."""

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import trainer_client


class ScriptedServer:
    """Answers points batches with the scripted statuses, then 200; records every attempt."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.attempts = []  # (status answered, batch_id)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, batch_id = 200, None
                if self.path.endswith("/points"):
                    batch_id = json.loads(gzip.decompress(body))["batch_id"]
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    outer.attempts.append((status, batch_id))
                reply = json.dumps({"detail": f"scripted {status}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_retryable_answers_are_retried_with_the_same_batch_id(status, spool_dir):
    server = ScriptedServer([status, status])
    try:
        run = trainer_client.init("retry", server=server.url, flush_interval=60)
        run.log(x=1.0)
        run.finish(timeout=60)  # finish sends at once, then retries after the backoff
    finally:
        server.close()
    statuses = [s for s, _ in server.attempts]
    assert statuses[:2] == [status, status] and statuses[-1] == 200
    assert len({b for _, b in server.attempts}) == 1  # one batch, sent again under its own id
    assert not (spool_dir / run.id).exists()


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_refused_batches_are_kept_aside_and_reported(status, spool_dir, capfd):
    server = ScriptedServer([status])
    try:
        run = trainer_client.init("refused", server=server.url, flush_interval=60)
        run.log(x=1.0)
        run.finish(timeout=30)
    finally:
        server.close()
    assert [s for s, _ in server.attempts] == [status]  # not retried: it cannot succeed
    kept = list((spool_dir / run.id / "rejected").glob("*.msg"))
    assert len(kept) == 1
    assert f"scripted {status}" in (spool_dir / run.id / "rejected" / (kept[0].stem + ".reason")
                                    ).read_text()
    assert "refused" in capfd.readouterr().err
