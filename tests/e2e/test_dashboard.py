"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a real
``ganwatch serve``. What is asserted is what a user sees: rows, badges, the points Plotly holds,
alert items, the image the slider shows.

Chromium comes from the system (``apt-get install chromium``; ``.ci/run`` installs it): without
it these tests skip with the reason, except under CI, where they fail.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image

import trainer_client
from tests.support import ROOT, ServerProcess

CHROMIUM = os.environ.get("GANWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("GANWATCH_TEST_ARTIFACTS", ROOT / "test-artifacts"))
XSS_NAME = "<img src=x onerror=alert(1)>"


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests (.ci/run installs chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _missing(f"playwright is not installed ({exc})")
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def dash_server(tmp_path_factory):
    proc = ServerProcess(data_dir=tmp_path_factory.mktemp("dashboard"),
                         env={"GANWATCH_LIVE_POLL_INTERVAL": "0.2"}).start()
    yield proc
    proc.stop()


@pytest.fixture
def page(browser, dash_server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.dialogs = []
    pg.errors = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    # the pages run under a Content-Security-Policy: anything it blocks is a failure too
    pg.on("console", lambda m: pg.errors.append(m.text) if "Content Security Policy" in m.text
          else None)
    yield pg
    context.close()
    assert pg.errors == [], f"the page raised: {pg.errors}"


def new_run(api, name: str, **body) -> str:
    r = api.post("/api/v1/runs", json={"name": name, **body})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def post_points(api, run_id: str, series: dict[str, tuple[list[int], list]]) -> None:
    body = {"batch_id": uuid.uuid4().hex,
            "series": {k: {"steps": s, "values": v} for k, (s, v) in series.items()}}
    r = api.post(f"/api/v1/runs/{run_id}/points", json=body)
    assert r.status_code == 200, r.text


def png(color) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(out, format="PNG")
    return out.getvalue()


def open_run(page, server, run_id: str) -> None:
    page.goto(f"{server.url}/runs/{run_id}")
    page.wait_for_selector("body[data-ready=true]", state="attached", timeout=30_000)


def trace_lengths(page, title: str) -> dict[str, int]:
    return page.evaluate(
        """(title) => {
            const div = document.querySelector(`.chart[data-title="${title}"]`);
            return Object.fromEntries(div.data.map((t) => [t.meta.key, t.x.length]));
        }""", title)


def test_runs_list_shows_health_and_run_page_holds_the_stored_points(page, dash_server):
    tag = uuid.uuid4().hex[:6]
    with dash_server.client() as api:
        healthy = new_run(api, f"healthy-{tag}")
        failing = new_run(api, f"failing-{tag}")
        steps = list(range(300))
        post_points(api, healthy, {"d_loss": (steps, [1.0 + 0.01 * (s % 7) for s in steps]),
                                   "g_loss": (steps, [0.7] * 300)})
        post_points(api, failing, {"d_loss": (steps, [1.0] * 150 + ["NaN"] * 150)})
        stored = api.get(f"/api/v1/runs/{healthy}/series",
                         params={"key": ["d_loss", "g_loss"]}).json()["series"]

    page.goto(dash_server.url + "/")
    page.fill("#filter-name", tag)
    page.wait_for_selector(f"tr[data-run-id='{failing}'][data-health='critical']")
    rows = page.locator("#runs tr")
    assert rows.count() == 2
    health = {rows.nth(i).locator(".run-name").inner_text(): rows.nth(i).locator(".badge")
              .inner_text() for i in range(2)}
    assert health == {f"healthy-{tag}": "ok", f"failing-{tag}": "critical"}
    page.select_option("#filter-health", "critical")
    page.wait_for_function("() => document.querySelectorAll('#runs tr').length === 1")
    assert page.locator("#runs .run-name").inner_text() == f"failing-{tag}"
    page.select_option("#filter-health", "")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "runs-list.png"))

    page.click(f"text=healthy-{tag}")
    page.wait_for_selector("body[data-ready=true]", state="attached", timeout=30_000)
    assert page.url.endswith(f"/runs/{healthy}")
    assert trace_lengths(page, "Losses") == {s["key"]: s["count"] for s in stored}
    assert trace_lengths(page, "Losses") == {"d_loss": 300, "g_loss": 300}


def test_zoom_on_one_chart_zooms_all_and_reads_the_range_at_full_resolution(page, dash_server):
    with dash_server.client() as api:
        run_id = new_run(api, "long-run")
        steps = list(range(10_000))
        post_points(api, run_id, {"d_loss": (steps, [math.sin(s / 50) for s in steps]),
                                  "d_real": (steps, [0.5] * 10_000)})
    open_run(page, dash_server, run_id)
    assert trace_lengths(page, "Losses")["d_loss"] <= 2000  # downsampled: 10,000 stored
    page.evaluate("""() => Plotly.relayout(document.querySelector('.chart[data-title="Losses"]'),
                                           {'xaxis.range': [4000, 4999]})""")
    # the zoomed range, read again: every stored point in it, on both charts
    page.wait_for_function("""() => [...document.querySelectorAll('.chart')].every(
        (d) => d.data[0].x.length === 1000)""")
    assert trace_lengths(page, "Losses") == {"d_loss": 1000}
    ranges = page.evaluate("() => [...document.querySelectorAll('.chart')].map("
                           "(d) => d.layout.xaxis.range)")
    assert ranges == [[4000, 4999], [4000, 4999]]


def test_streamed_points_and_alert_appear_live_and_acknowledging_persists(page, dash_server):
    run = trainer_client.init(f"live-{uuid.uuid4().hex[:6]}", server=dash_server.url,
                              rules={"non_finite": {"clear_for": 100_000}})
    for step in range(50):
        run.log(step=step, d_loss=1.0, g_loss=0.7)
    run.flush()  # asks the sender to send now; it does not wait for the server
    open_run(page, dash_server, run.id)
    # the points stored before the page loaded are drawn with it; any still on their way
    # arrive live (a series new to the page adds its chart)
    page.wait_for_function("""() => {
        const div = document.querySelector('.chart[data-title="Losses"]');
        return div && div.data && div.data.length === 2
            && div.data.every((t) => t.x.length === 50);
    }""", timeout=30_000)
    assert trace_lengths(page, "Losses") == {"d_loss": 50, "g_loss": 50}
    page.evaluate("() => { window.notReloaded = true; }")

    for step in range(50, 120):
        run.log(step=step, d_loss=1.0, g_loss=0.7)
    page.wait_for_function("""() => document.querySelector('.chart[data-title="Losses"]')
                              .data[0].x.length === 120""", timeout=30_000)
    assert page.evaluate("() => window.notReloaded") is True
    assert page.locator("#alerts-open li").count() == 0

    for step in range(120, 125):
        run.log(step=step, d_loss=math.nan, g_loss=0.7)
    item = page.wait_for_selector("#alerts-open li[data-rule=non_finite][data-status=firing]",
                                  timeout=30_000)
    assert "Non-finite" in item.inner_text()
    alert_id = item.get_attribute("data-alert-id")
    shapes = page.evaluate("""() => document.querySelector('.chart[data-title="Losses"]')
                              .layout.shapes.map((s) => s.name)""")
    assert f"alert-{alert_id}" in shapes
    assert page.evaluate("() => window.notReloaded") is True
    page.wait_for_selector("#run-health .badge-critical")

    item.query_selector("button.ack").click()
    page.wait_for_selector(f"#alert-{alert_id} .acked")
    page.reload()
    page.wait_for_selector("body[data-ready=true]", state="attached", timeout=30_000)
    assert "acknowledged" in page.inner_text(f"#alert-{alert_id} .acked")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "run-page.png"), full_page=True)
    run.finish()


def test_the_sample_slider_changes_the_grid(page, dash_server):
    with dash_server.client() as api:
        run_id = new_run(api, "samples-run")
        post_points(api, run_id, {"d_loss": ([0, 100, 200], [1.0, 1.0, 1.0])})
        ids = []
        for step, color in ((0, "red"), (100, "green"), (200, "blue")):
            r = api.post(f"/api/v1/runs/{run_id}/samples", params={"step": step},
                         content=png(color), headers={"Content-Type": "image/png"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
    open_run(page, dash_server, run_id)
    image = page.locator("#sample-image")
    assert image.get_attribute("data-step") == "200"  # the newest first
    assert image.get_attribute("src").endswith(f"/samples/{ids[2]}")
    slider = page.locator("#sample-slider")
    slider.focus()
    page.keyboard.press("Home")
    assert image.get_attribute("data-step") == "0"
    assert image.get_attribute("src").endswith(f"/samples/{ids[0]}")
    page.keyboard.press("ArrowRight")
    assert image.get_attribute("data-step") == "100"
    assert "step 100 (2 of 3)" in page.inner_text("#sample-step")
    # the picture itself is the green grid
    pixel = page.evaluate("""async () => {
        const img = document.getElementById('sample-image');
        await img.decode();
        const c = document.createElement('canvas'); c.width = c.height = 16;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        return Array.from(ctx.getImageData(8, 8, 1, 1).data.slice(0, 3));
    }""")
    assert pixel == [0, 128, 0]


def test_a_run_named_like_html_shows_as_text_and_runs_no_script(page, dash_server):
    with dash_server.client() as api:
        run_id = new_run(api, XSS_NAME, config={"note": XSS_NAME})
        post_points(api, run_id, {XSS_NAME: ([0, 1], [1.0, 2.0])})
    page.goto(dash_server.url + "/")
    page.fill("#filter-name", XSS_NAME)
    cell = page.wait_for_selector(f"tr[data-run-id='{run_id}'] .run-name")
    assert cell.inner_text() == XSS_NAME
    assert page.locator("#runs img").count() == 0
    open_run(page, dash_server, run_id)
    assert page.inner_text("#run-name") == XSS_NAME
    assert XSS_NAME in page.text_content("#run-config")  # in the folded Config table
    # the series key is the chart's title and legend, as text
    assert page.locator(f'.chart[data-title="{XSS_NAME}"]').count() == 1
    assert page.locator("main img:not(#sample-image)").count() == 0
    assert page.evaluate("() => document.querySelectorAll('img[src=x]').length") == 0
    assert page.dialogs == []


def test_live_stream_reconnects_after_a_server_restart(browser, tmp_path):
    server = ServerProcess(data_dir=tmp_path / "server",
                           env={"GANWATCH_LIVE_POLL_INTERVAL": "0.2"}).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        with server.client() as api:
            run_id = new_run(api, "restarted")
            post_points(api, run_id, {"d_loss": (list(range(10)), [1.0] * 10)})
        open_run(page, server, run_id)
        page.wait_for_selector("#live-status.live-on")
        server.stop()
        page.wait_for_selector("#live-status.live-off", timeout=30_000)
        server.start()
        with server.client() as api:
            post_points(api, run_id, {"d_loss": (list(range(10, 30)), [1.0] * 20)})
        page.wait_for_function("""() => document.querySelector('.chart[data-title="Losses"]')
                                  .data[0].x.length === 30""", timeout=30_000)
        page.wait_for_selector("#live-status.live-on", timeout=30_000)
        # what the user sees: every point, those sent after the restart included, once, and
        # the page saying it is live again
        shown = page.evaluate("""() => { const t = document.querySelector(
            '.chart[data-title="Losses"]').data[0]; return [Array.from(t.x), Array.from(t.y)]; }""")
        assert shown == [list(range(30)), [1.0] * 30]
        assert page.locator("#live-status").get_attribute("class") == "live-status live-on"
    finally:
        context.close()
        server.stop()


def test_compare_overlays_a_series_across_the_chosen_runs(page, dash_server):
    with dash_server.client() as api:
        ids = [new_run(api, f"cmp-{i}") for i in range(3)]
        for i, run_id in enumerate(ids):
            post_points(api, run_id, {"g_loss": (list(range(20 + i)), [float(i)] * (20 + i))})
    page.goto(f"{dash_server.url}/compare?run={ids[0]}&run={ids[1]}&key=g_loss")
    page.wait_for_selector("body[data-ready=true]", state="attached")
    traces = page.evaluate("() => document.getElementById('compare-chart').data.map("
                           "(t) => [t.name, t.x.length])")
    assert sorted(traces) == [["cmp-0", 20], ["cmp-1", 21]]
    page.check(f"input[value='{ids[2]}']")
    page.wait_for_function("() => document.getElementById('compare-chart').data.length === 3")
    assert f"run={ids[2]}" in page.url  # the link follows the choice


def test_the_webhooks_page_shows_each_delivery(page, dash_server):
    from tests.support.receiver import Receiver

    receiver = Receiver(plan=[500])
    try:
        with dash_server.client() as api:
            hook = api.post("/api/v1/webhooks", json={"url": receiver.url, "name": "ops"}).json()
        page.goto(f"{dash_server.url}/webhooks")
        section = page.wait_for_selector(f".webhook[data-webhook-id='{hook['id']}']")
        assert "ops" in section.inner_text() and receiver.url in section.inner_text()
        section.query_selector("button").click()  # send a test event: 500 first, then 200
        receiver.wait_for(2)
        row = page.wait_for_selector(
            f".webhook[data-webhook-id='{hook['id']}'] tr[data-status=delivered]", timeout=30_000)
        cells = [c.inner_text() for c in row.query_selector_all("td")]
        assert cells[1:5] == ["test", "delivered", "2", "200"]
    finally:
        receiver.close()


def test_an_alert_leads_to_its_samples_and_its_rule_can_be_silenced(page, dash_server):
    with dash_server.client() as api:
        run_id = new_run(api, "alert-samples", rules={"non_finite": {"clear_for": 100_000}})
        steps = list(range(300))
        post_points(api, run_id, {"d_loss": (steps, [1.0] * 150 + ["NaN"] + [1.0] * 149)})
        for step in (0, 100, 150, 250):
            r = api.post(f"/api/v1/runs/{run_id}/samples", params={"step": step},
                         content=png("gray"), headers={"Content-Type": "image/png"})
            assert r.status_code == 201, r.text
        alert = api.get("/api/v1/alerts", params={"run_id": run_id}).json()["data"][0]
    open_run(page, dash_server, run_id)
    item = page.locator(f"#alert-{alert['id']}")
    step = alert["fired_step"]
    item.locator("button.show-samples").click()
    nearest = min((0, 100, 150, 250), key=lambda s: abs(s - step))
    assert page.locator("#sample-image").get_attribute("data-step") == str(nearest)

    item.locator("button.silence").click()
    page.wait_for_selector("#silenced .silenced code")
    assert page.inner_text("#silenced .silenced code") == "non_finite"
    with dash_server.client() as api:
        assert api.get(f"/api/v1/runs/{run_id}/rules").json()["silenced"] == ["non_finite"]
    page.click("#silenced button")  # Unsilence
    page.wait_for_selector("#silenced .silenced", state="detached")
    with dash_server.client() as api:
        assert api.get(f"/api/v1/runs/{run_id}/rules").json()["silenced"] == []


def test_a_locked_server_sends_the_browser_to_sign_in_and_back(browser, tmp_path):
    import subprocess
    import sys

    server = ServerProcess(data_dir=tmp_path / "locked",
                           env={"GANWATCH_AUTH": "required"}).start()
    context = browser.new_context()
    try:
        def token(scope, project):
            done = subprocess.run([sys.executable, "-m", "ganwatch", "token", "create", "--scope",
                                   scope, "--project", project, "--data-dir",
                                   str(server.data_dir)], capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == 0, done.stderr
            return done.stdout.strip()

        writer = token("ingest", "vision")
        with httpx.Client(base_url=server.url,
                          headers={"Authorization": f"Bearer {writer}"}) as api:
            run_id = new_run(api, "locked-run")
            post_points(api, run_id, {"d_loss": ([0, 1, 2], [1.0, 0.9, 0.8])})
        page = context.new_page()
        page.goto(f"{server.url}/runs/{run_id}")
        page.wait_for_url("**/login?next=*")
        page.fill("#token", "gw_1_wrong")
        page.click("button[type=submit]")
        page.wait_for_selector("#login-error:not([hidden])")
        page.fill("#token", token("read", "vision"))
        page.click("button[type=submit]")
        page.wait_for_url(f"**/runs/{run_id}")
        page.wait_for_selector("body[data-ready=true]", state="attached", timeout=30_000)
        assert trace_lengths(page, "Losses") == {"d_loss": 3}
        page.wait_for_selector("#live-status.live-on")  # the live stream got in with the cookie
    finally:
        context.close()
        server.stop()


def test_a_run_the_rules_cannot_read_says_so_and_a_known_trainer_shows_its_roles(page,
                                                                                 dash_server):
    with dash_server.client() as api:
        blind = new_run(api, "unknown-names")
        post_points(api, blind, {"accuracy": (list(range(20)), [0.5] * 20)})
        dcgan = new_run(api, "dcgan-example-names", loss="wgan-gp")
        post_points(api, dcgan, {"Loss_D": (list(range(20)), [-4.0] * 20),
                                 "D(x)": (list(range(20)), [4.5] * 20)})
    open_run(page, dash_server, blind)
    page.wait_for_selector("ul.not-watching li[data-rule=d_loss_zero]")
    needs = page.locator("ul.not-watching li[data-rule=d_loss_zero]").inner_text()
    assert needs == "d_loss_zero: needs d_loss (or an alias)"
    empty = page.locator("#alerts-open-empty")
    assert "the rules cannot see this run" in empty.inner_text()
    assert "nothing wrong" not in empty.inner_text()  # never the healthy run's words
    open_run(page, dash_server, dcgan)
    page.wait_for_selector("#coverage .roles")
    assert page.locator("#coverage .roles").inner_text() == "Reading Loss_D as d_loss, D(x) " \
                                                            "as d_real"
    assert page.locator("#run-loss").inner_text() == "wgan-gp (declared)"
    assert page.locator("ul.not-watching li[data-rule=d_loss_zero]").count() == 0  # not a
    # WGAN rule: it does not apply, which is not the same as not watching
