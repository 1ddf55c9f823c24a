"""The sign-in page as an attacker would use it, in a real browser (Debian's Chromium driven by
Playwright, as tests/e2e/test_dashboard.py does; without Chromium these skip, except under CI):
hostile ``next`` values never take the browser off the server's origin, the cookie holds a
session id and never the token (not even what another service on the same host receives: cookies
ignore ports), sign-out ends the session, and the pages run under their Content-Security-Policy
without a violation."""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.test_dashboard import browser  # noqa: F401, F811  (the fixture: Chromium, or a skip)
from tests.support import ServerProcess, make_token


class OtherService:
    """Another web service on the same host, another port: records what browsers send it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, Cookie header)
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                service.requests.append((self.path, self.headers.get("Cookie", "")))
                body = b"<!doctype html><title>other service</title>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("adv-browser"),
                           env={"GANWATCH_AUTH": "required",
                                "GANWATCH_LIVE_POLL_INTERVAL": "0.2"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def other():
    service = OtherService()
    yield service
    service.close()




@pytest.fixture
def context(browser):  # noqa: F811
    ctx = browser.new_context()
    # every CSP violation the pages cause, whatever the console says about it
    ctx.add_init_script("""window.cspViolations = [];
        document.addEventListener('securitypolicyviolation',
            (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));""")
    ctx.errors, ctx.console = [], []
    ctx.on("page", lambda pg: (pg.on("pageerror", lambda e: ctx.errors.append(str(e))),
                               pg.on("console", lambda m: ctx.console.append(m.text))))
    yield ctx
    ctx.close()
    assert ctx.errors == [], f"the page raised: {ctx.errors}"
    assert not [m for m in ctx.console if "Content Security Policy" in m], ctx.console


def hostile_nexts(server, other) -> list[str]:
    o = f"127.0.0.1:{other.port}"
    return [f"/\\{o}/x", f"//{o}/x", f"http://{o}/x", f"https://{o}/x", "https://evil.example/",
            f"/%5C{o}/x", f"/%5c{o}/x", "javascript:alert(document.cookie)",
            "JaVaScRiPt:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
            f"\\/\\/{o}/x", f"/\t/{o}/x", f"/\n/{o}/x", f"\t//{o}/x", f" //{o}/x",
            f"/\\\\{o}/x", f"///{o}/x", f"\\\\{o}/x", f"{server.url}//{o}/x",
            f"http://127.0.0.1:{server.url.rsplit(':', 1)[1]}@{o}/x",
            f"data:text/html,<script>location='http://{o}/'</script>", f"http:{o}",
            f"//{o}%2F..", "/\u3002/evil.example", "/.\\evil.example"]


def sign_in(page, server, token: str, next_value: str | None, raw: bool = False) -> None:
    query = "" if next_value is None else "?next=" + (next_value if raw
                                                      else quote(next_value, safe=""))
    page.goto(f"{server.url}/login{query}")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url, timeout=15_000)
    page.wait_for_load_state()


def test_hostile_next_values_never_leave_the_servers_origin(context, locked, other):
    token = make_token(locked, "read", "nexts")
    page = context.new_page()
    page.on("dialog", lambda d: (context.errors.append(f"dialog: {d.message}"), d.dismiss()))
    values = [(v, False) for v in hostile_nexts(locked, other)]
    # and as the probe wrote it, unencoded in the address
    values += [(f"/%5C127.0.0.1:{other.port}/x", True), (f"//127.0.0.1:{other.port}/x", True),
               (f"/\\127.0.0.1:{other.port}/x", True)]
    for value, raw in values:
        sign_in(page, locked, token, value, raw)
        assert page.url.startswith(locked.url + "/"), (value, page.url)
        assert page.evaluate("() => location.origin") == locked.url, value
    assert other.requests == []  # the browser never went to the other service
    # a same-origin next is followed, with its query and fragment
    sign_in(page, locked, token, "/compare?key=loss#top")
    assert page.url == f"{locked.url}/compare?key=loss#top"


def test_the_browser_cookie_holds_no_token_and_sign_out_ends_the_session(context, locked,
                                                                        other):
    writer = make_token(locked, "ingest", "cookie")
    reader = make_token(locked, "read", "cookie")
    with httpx.Client(base_url=locked.url, headers={"Authorization": f"Bearer {writer}"}) as api:
        run_id = api.post("/api/v1/runs", json={"name": f"cookie-{uuid.uuid4().hex[:6]}"}
                          ).json()["id"]
        body = {"batch_id": uuid.uuid4().hex,
                "series": {"d_loss": {"steps": [0, 1, 2], "values": [1.0, 0.9, 0.8]}}}
        assert api.post(f"/api/v1/runs/{run_id}/points", json=body).status_code == 200
    page = context.new_page()
    page.goto(f"{locked.url}/runs/{run_id}")
    page.wait_for_url("**/login?next=*")
    page.fill("#token", reader)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/runs/{run_id}")
    page.wait_for_selector("body[data-ready=true]", state="attached", timeout=30_000)
    # Plotly drew under the Content-Security-Policy, and nothing was blocked
    assert page.evaluate("""() => document.querySelector('.chart[data-title="Losses"]')
                            .data[0].x.length""") == 3
    page.wait_for_selector("#live-status.live-on")  # the live stream got in with the cookie
    assert page.evaluate("() => window.cspViolations") == []

    secret = reader.split("_", 2)[2]
    cookies = context.cookies()
    assert [c["name"] for c in cookies] == ["ganwatch_session"]
    session = cookies[0]
    assert reader not in session["value"] and secret not in session["value"]
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"
    assert page.evaluate("() => document.cookie") == ""  # no script of the page reads it
    # cookies ignore ports: another service on this host receives it, and finds no token
    page.goto(f"http://127.0.0.1:{other.port}/elsewhere")
    received = [cookie for path, cookie in other.requests if path == "/elsewhere"]
    assert received and all(reader not in c and secret not in c for c in received)

    page.goto(f"{locked.url}/runs/{run_id}")
    page.wait_for_selector("body[data-ready=true]", state="attached", timeout=30_000)
    page.click("#sign-out")
    page.wait_for_url("**/login?next=*")
    page.goto(f"{locked.url}/runs/{run_id}")
    page.wait_for_url("**/login?next=*")  # signed out: the dashboard asks again
    page.reload()
    page.wait_for_url("**/login?next=*")
    # the cookie the browser had is refused by the server, replayed by anyone
    with httpx.Client(base_url=locked.url,
                      headers={"Cookie": f"ganwatch_session={session['value']}"}) as replay:
        assert replay.get(f"/api/v1/runs/{run_id}").status_code == 401


def test_every_page_runs_under_its_csp_without_a_violation(context, locked):
    token = make_token(locked, "admin", "*")
    page = context.new_page()
    sign_in(page, locked, token, "/")
    drawn = {  # what each page shows once its scripts have run
        "/": "() => document.querySelector('#runs tr') !== null"
             " || !document.getElementById('empty').hidden",
        "/compare": "() => document.body.dataset.ready === 'true'",
        "/webhooks": "() => document.body.dataset.ready === 'true'",
        "/login": "() => document.readyState === 'complete'",
    }
    for path, shown in drawn.items():
        page.goto(f"{locked.url}{path}")
        page.wait_for_function(shown, timeout=30_000)
        assert page.evaluate("() => window.cspViolations") == [], path
    # the runs page's filter: Enter filters, it does not submit the form (no inline handler).
    # Submit events are dispatched while the key is handled: a listener on the window, which
    # runs after the page's own, sees whether the page stopped the submission.
    page.goto(f"{locked.url}/")
    page.wait_for_function(drawn["/"], timeout=30_000)
    page.evaluate("""() => { window.submits = [];
        window.addEventListener("submit", (e) => window.submits.push(e.defaultPrevented)); }""")
    page.fill("#filter-name", "x")
    page.press("#filter-name", "Enter")
    assert page.evaluate("() => window.submits") == [True]
