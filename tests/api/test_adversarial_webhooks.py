"""Webhooks against someone who means harm, on real servers (SQLite and PostgreSQL) and a real
loopback receiver: a webhook is a request the server makes from inside its network.

- SSRF: every refused network in every spelling resolvers accept is a 422 (create and patch)
  on a server with authentication on; link-local and cloud metadata addresses even on the open
  one; a name whose *resolved* address is refused is stopped at connect time, the receiver
  getting nothing; allow-listed addresses are delivered to; the open loopback server delivers
  to 127.0.0.1 as it always did.
- The delivery log holds a status and ganwatch's own short reason, never the receiver's body.
- URLs httpx cannot send to are a 422, and one stored before the checks fails at once.
- Signatures (Standard Webhooks) cover the delivery id, the timestamp and the body, checked
  with the standardwebhooks package, an implementation written here from the spec, and ours.
- Slack and Discord bodies show hostile run names without obeying them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import re
import time
import uuid

import httpcore
import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from monitor.webhooks import payloads, verify_headers, verify_signature
from monitor.webhooks.targets import GuardedBackend, Policy, TargetRefused
from tests.support import BOTH_DATABASES, ganwatch, own_server, wait_until
from tests.support.receiver import Receiver

FAST = {"GANWATCH_WEBHOOK_RETRY_BASE": "0.05", "GANWATCH_WEBHOOK_POLL_INTERVAL": "0.05"}
COLLAPSE_RULES = {"mode_collapse": {"window": 10, "warmup": 0, "for": 5, "clear_for": 10}}
PUBLIC_URL = "https://hooks.example.com/never-sent"  # stored disabled: nothing is ever sent

# Written here from the issue, not read from the code under test: each network, and the words
# a refusal of one of its addresses may give as the reason.
ALWAYS = [
    ("169.254.0.0/16", ("link-local", "metadata")),
    ("169.254.169.254/32", ("metadata",)),
    ("100.100.100.200/32", ("metadata",)),
    ("fd00:ec2::254/128", ("metadata",)),
    ("fe80::/10", ("link-local",)),
    ("0.0.0.0/8", ("unspecified",)),
    ("::/128", ("unspecified",)),
    ("224.0.0.0/4", ("multicast",)),
    ("ff00::/8", ("multicast",)),
    ("240.0.0.0/4", ("reserved", "broadcast")),
    ("255.255.255.255/32", ("broadcast",)),
]
PRIVATE = [
    ("127.0.0.0/8", ("loopback",)),
    ("::1/128", ("loopback",)),
    ("10.0.0.0/8", ("private",)),
    ("172.16.0.0/12", ("private",)),
    ("192.168.0.0/16", ("private",)),
    ("fc00::/7", ("private", "metadata")),
    ("100.64.0.0/10", ("shared", "metadata")),
]


def spellings(address: str) -> list[str]:
    """The ways a URL's host can name ``address`` that resolvers (or IPv6) accept."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        return [f"[{ip.compressed}]", f"[{ip.exploded}]", f"[{ip.exploded.upper()}]"]
    n, (a, b, c, d) = int(ip), ip.packed
    out = [str(ip), str(n), f"0x{n:08x}", f"0X{n:X}", f"0{a:o}.0{b:o}.0{c:o}.0{d:o}",
           f"{a}.{n & 0xFFFFFF}", f"{a}.{b}.{n & 0xFFFF}", f"0x{a:x}.{b}.{c}.{d}",
           f"[::ffff:{ip}]", f"[::ffff:{n >> 16:x}:{n & 0xFFFF:x}]", f"[64:ff9b::{ip}]"]
    if n > 1:  # ::0.0.0.0 and ::0.0.0.1 are :: and ::1, spelled in IPv6 already
        out.append(f"[::{ip}]")
    return out


def samples(network: str) -> list[str]:
    net = ipaddress.ip_network(network)
    picks = {net[0], net[-1], net[net.num_addresses // 2], net[min(1, net.num_addresses - 1)]}
    return sorted(str(p) for p in picks)


def table(networks) -> list[tuple[str, str, tuple[str, ...]]]:
    """(url host, the address it means, the words its refusal may give), for every network x
    sample address x spelling."""
    return [(host, address, words) for network, words in networks
            for address in samples(network) for host in spellings(address)]




def admin_client(server) -> httpx.Client:
    done = ganwatch(server, "token", "create", "--scope", "admin", "--name", "webhook tests")
    assert done.returncode == 0, done.stderr
    return httpx.Client(base_url=server.url, timeout=30,
                        headers={"Authorization": f"Bearer {done.stdout.strip()}"})


@pytest.fixture(scope="module", params=BOTH_DATABASES)
def locked(request, tmp_path_factory):
    """Authentication on, no allow-list: loopback and private addresses are refused."""
    with own_server(request.param, tmp_path_factory.mktemp("locked"),
                    {"GANWATCH_AUTH": "required", **FAST}) as proc:
        with admin_client(proc) as api:
            yield proc, api


@pytest.fixture(scope="module", params=BOTH_DATABASES)
def listed(request, tmp_path_factory):
    """Authentication on, with an allow-list naming ``localhost`` (a name: its addresses are
    not vouched for) and the range 127.0.0.2/31 (addresses: these may be reached)."""
    env = {"GANWATCH_AUTH": "required", "GANWATCH_WEBHOOK_ALLOWED_HOSTS": "localhost,127.0.0.2/31",
           **FAST}
    with own_server(request.param, tmp_path_factory.mktemp("listed"), env) as proc:
        with admin_client(proc) as api:
            yield proc, api


@pytest.fixture(scope="module", params=BOTH_DATABASES)
def open_server(request, tmp_path_factory):
    """The default single-user server on loopback: open, no allow-list."""
    with own_server(request.param, tmp_path_factory.mktemp("open"), FAST) as proc:
        with proc.client() as api:
            yield proc, api


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def deliveries(api, hook_id) -> list[dict]:
    response = api.get(f"/api/v1/webhooks/{hook_id}/deliveries")
    assert response.status_code == 200, response.text
    return response.json()["data"]


def settled(api, hook_id) -> dict:
    """The webhook's only delivery, once it is no longer pending."""
    wait_until(lambda: deliveries(api, hook_id)[0]["status"] != "pending", timeout=20,
               what="the delivery to settle")
    [delivery] = deliveries(api, hook_id)
    return delivery


def add_hook(api, url, **fields) -> dict:
    response = api.post("/api/v1/webhooks", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    return response.json()


HTTPX_REFUSES = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")  # and not an IPv4 address


def assert_refused(response, address: str, words, host: str = "") -> None:
    assert response.status_code == 422, (address, response.text)
    detail = response.json()["detail"]
    if HTTPX_REFUSES.match(host) and host != address:
        # four parts with leading zeros (0177.0.0.1): httpx itself refuses to parse them, so
        # they can never be sent to; the schema says so
        assert "url" in str(detail) and "not a valid URL" in str(detail), detail
        return
    assert isinstance(detail, str) and "webhooks may not point at" in detail, detail
    assert any(w in detail for w in words), (address, words, detail)


def webhook_ids(api) -> set[int]:
    return {h["id"] for h in api.get("/api/v1/webhooks").json()["data"]}


def check_refused_everywhere(api, rows) -> None:
    before = webhook_ids(api)
    parked = add_hook(api, PUBLIC_URL, enabled=False)
    try:
        for host, address, words in rows:
            url = f"http://{host}:8080/hook"
            assert_refused(api.post("/api/v1/webhooks", json={"url": url}), address, words,
                           host)
            assert_refused(api.patch(f"/api/v1/webhooks/{parked['id']}", json={"url": url}),
                           address, words, host)
        assert api.get(f"/api/v1/webhooks/{parked['id']}").json()["url"] == PUBLIC_URL
        assert webhook_ids(api) == before | {parked["id"]}  # nothing was created
    finally:
        api.delete(f"/api/v1/webhooks/{parked['id']}")


# -- SSRF: what the URL's text tells --------------------------------------------------------

def test_every_refused_network_in_every_spelling_is_a_422_when_authentication_is_on(locked):
    _, api = locked
    rows = table(ALWAYS + PRIVATE)
    assert len(rows) > 250
    check_refused_everywhere(api, rows)


def _address_in(network: str):
    net = ipaddress.ip_network(network)
    return st.integers(0, net.num_addresses - 1).map(lambda i: str(net[i]))


NETWORKS = ALWAYS + PRIVATE
ADDRESSES = st.sampled_from(range(len(NETWORKS))).flatmap(
    lambda i: st.tuples(_address_in(NETWORKS[i][0]), st.just(NETWORKS[i][1])))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(picked=ADDRESSES, data=st.data())
def test_any_address_of_a_refused_network_is_refused_however_written(locked, picked, data):
    _, api = locked
    address, words = picked
    if address == "169.254.169.254":
        words = (*words, "metadata")
    host = data.draw(st.sampled_from(spellings(address)), label="host")
    response = api.post("/api/v1/webhooks", json={"url": f"https://{host}/x"})
    assert_refused(response, address, words, host)


def test_link_local_and_metadata_are_refused_even_on_the_open_server(open_server, receiver):
    _, api = open_server
    check_refused_everywhere(api, table(ALWAYS))
    # loopback and private addresses are the open server's user's own: allowed, as before
    for host in ("127.0.0.1", "[::1]", "10.1.2.3", "0x7f000001", "localhost"):
        hook = add_hook(api, f"http://{host}:9/hook", enabled=False)
        assert api.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
    hook = add_hook(api, receiver.url)
    assert api.post(f"/api/v1/webhooks/{hook['id']}/test").status_code == 202
    [request] = receiver.wait_for(1)
    assert settled(api, hook["id"])["status"] == "delivered"
    assert request.json()["event"] == "test"
    api.delete(f"/api/v1/webhooks/{hook['id']}")


# -- SSRF: what the host resolves to, at connect time ---------------------------------------

def test_a_listed_name_resolving_to_loopback_is_stopped_at_connect_and_listed_addresses_pass(
        listed):
    _, api = listed
    plain = Receiver()  # 127.0.0.1: reachable by the name localhost only
    allowed = Receiver(host="127.0.0.2")  # inside the listed range
    try:
        # the name is listed, so its text passes; what it resolves to is not
        by_name = add_hook(api, f"http://localhost:{plain.port}/hook")
        assert api.post(f"/api/v1/webhooks/{by_name['id']}/test").status_code == 202
        refused = settled(api, by_name["id"])
        assert refused["status"] == "failed" and refused["attempts"] == 1
        assert refused["last_status_code"] is None
        assert refused["last_error"].startswith("refused: localhost resolves to ")
        assert "loopback" in refused["last_error"] and len(refused["last_error"]) <= 200
        # the same address by its own text, or any other loopback spelling: not listed
        for host in ("127.0.0.1", "[::1]", "127.1", "0x7f000001", "[::ffff:127.0.0.1]"):
            response = api.post("/api/v1/webhooks", json={"url": f"http://{host}:{plain.port}/"})
            assert response.status_code == 422, host
        # a listed address is delivered to, on the server with authentication on
        ok = add_hook(api, allowed.url, secret="listed-secret")
        assert api.post(f"/api/v1/webhooks/{ok['id']}/test").status_code == 202
        [request] = allowed.wait_for(1)
        assert settled(api, ok["id"])["status"] == "delivered"
        assert verify_headers("listed-secret", request.headers, request.body)
        assert plain.requests == []  # nothing ever reached the refused address
        for hook in (by_name, ok):
            api.delete(f"/api/v1/webhooks/{hook['id']}")
    finally:
        plain.close()
        allowed.close()


def test_the_connect_time_check_connects_only_to_the_address_it_checked():
    """In process: a resolver whose answer changes between two lookups (DNS rebinding), and
    one that mixes a forbidden address among allowed ones."""
    policy = Policy(strict=True)
    connected: list[str] = []

    class Inner(httpcore.AsyncMockBackend):
        def __init__(self):
            super().__init__([])

        async def connect_tcp(self, host, port, timeout=None, local_address=None,
                              socket_options=None):
            connected.append(host)
            return await super().connect_tcp(host, port, timeout)

    answers = [["93.184.216.34"], ["127.0.0.1"]]  # first public, then loopback
    lookups = []

    async def rebinding(host, port, **_):
        lookups.append(host)
        return [(2, 1, 6, "", (a, port)) for a in answers[min(len(lookups) - 1, 1)]]

    async def mixed(host, port, **_):
        return [(2, 1, 6, "", ("93.184.216.34", port)), (10, 1, 6, "", ("::1", port, 0, 0))]

    async def scenario():
        backend = GuardedBackend(policy, Inner(), getaddrinfo=rebinding)
        await backend.connect_tcp("rebind.example", 80)
        assert lookups == ["rebind.example"] and connected == ["93.184.216.34"]
        with pytest.raises(TargetRefused, match="127.0.0.1 is a loopback"):
            await backend.connect_tcp("rebind.example", 80)  # the second answer: refused
        assert connected == ["93.184.216.34"]
        with pytest.raises(TargetRefused, match="::1 is a loopback"):
            await GuardedBackend(policy, Inner(), getaddrinfo=mixed).connect_tcp("mixed.test", 80)
        assert connected == ["93.184.216.34"]

    asyncio.run(scenario())


# -- the delivery log -----------------------------------------------------------------------

SECRET_BODY = b'{"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}'
SECRET_REASON = "token-gw_1_leaked"


def test_the_delivery_log_never_holds_what_the_receiver_answered(open_server):
    _, api = open_server
    hostile = Receiver(plan=[{"status": 500, "body": SECRET_BODY, "reason": SECRET_REASON},
                             {"status": 403, "body": SECRET_BODY, "reason": SECRET_REASON}])
    try:
        hook = add_hook(api, hostile.url)
        api.post(f"/api/v1/webhooks/{hook['id']}/test")
        hostile.wait_for(2)
        delivery = settled(api, hook["id"])
        shown = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").text
        api.delete(f"/api/v1/webhooks/{hook['id']}")
    finally:
        hostile.close()
    assert delivery["status"] == "failed" and delivery["attempts"] == 2
    assert [(a["status_code"], a["error"]) for a in delivery["log"]] == [
        (500, "HTTP 500 Internal Server Error"), (403, "HTTP 403 Forbidden")]
    assert delivery["last_error"] == "HTTP 403 Forbidden"
    for leaked in ("wJalrXUtnFEMI", "aws_secret", SECRET_REASON):
        assert leaked not in shown


# -- URLs that cannot be sent to ------------------------------------------------------------

UNSENDABLE = ["http://[::1", "http://exa mple.com/", "http://h:99999/", "http://h:0/",
              "http://", "http:///path", "http://a..b/", "http://-a.example/", "http://%41.com/",
              "http://[fe80::1%25eth0]/", "http://[::1]x/", "http://h:80:80/",
              "http://" + "a" * 64 + ".example/", "ftp://example.com/", "javascript:alert(1)"]


def test_urls_httpx_cannot_send_to_are_a_422_on_create_and_patch(open_server):
    _, api = open_server
    parked = add_hook(api, PUBLIC_URL, enabled=False)
    try:
        for url in UNSENDABLE:
            for response in (api.post("/api/v1/webhooks", json={"url": url}),
                             api.patch(f"/api/v1/webhooks/{parked['id']}", json={"url": url})):
                assert response.status_code == 422, (url, response.text)
                assert "url" in json.dumps(response.json()["detail"]), url
        assert api.get(f"/api/v1/webhooks/{parked['id']}").json()["url"] == PUBLIC_URL
    finally:
        api.delete(f"/api/v1/webhooks/{parked['id']}")


def _sql_url(server) -> str:
    if server.database_url:
        return server.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"sqlite:///{server.data_dir / 'ganwatch.db'}"


@pytest.mark.parametrize("stored, why", [
    ("http://h:99999/hook", "port 99999 is out of range"),
    ("http://exa mple.com/hook", "not a valid host name"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://[fe80::1]/", "link-local"),
])
def test_a_url_stored_before_the_checks_fails_at_once_and_is_not_retried(open_server, stored,
                                                                         why):
    """A webhook saved by an older version (written here straight into the database)."""
    server, api = open_server
    hook = add_hook(api, PUBLIC_URL, enabled=False)  # never enabled with a URL off this machine
    engine = sa.create_engine(_sql_url(server))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE webhooks SET url = :url WHERE id = :id"),
                         {"url": stored, "id": hook["id"]})
    finally:
        engine.dispose()
    try:
        assert api.patch(f"/api/v1/webhooks/{hook['id']}",
                         json={"enabled": True}).status_code == 200
        assert api.post(f"/api/v1/webhooks/{hook['id']}/test").status_code == 202
        delivery = settled(api, hook["id"])  # within its deadline, shorter than a 40 s lease
        assert delivery["status"] == "failed" and delivery["attempts"] == 1
        assert delivery["last_error"].startswith("refused: ") and why in delivery["last_error"]
        assert delivery["next_attempt_at"] is None
    finally:
        api.delete(f"/api/v1/webhooks/{hook['id']}")


# -- signatures -----------------------------------------------------------------------------

def spec_signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks' signature, written from the spec: v1,base64(HMAC-SHA256)."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def tampered(request):
    """(headers, body) variants, each with one signed thing changed."""
    h = dict(request.headers)
    other_id = uuid.uuid4().hex
    yield {**h, "webhook-id": other_id, "X-Ganwatch-Delivery": other_id}, request.body
    t = h["webhook-timestamp"]
    later = str(int(t) + 1)
    yield {**h, "webhook-timestamp": later, "X-Ganwatch-Signature": h[
        "X-Ganwatch-Signature"].replace(f"t={t},", f"t={later},")}, request.body
    yield h, request.body.replace(b'"test"', b'"firing"')
    yield h, request.body + b" "


def standard_headers(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k.lower().startswith("webhook-")}


def test_deliveries_verify_with_standard_webhooks_and_the_id_and_time_are_signed(open_server,
                                                                                 receiver):
    _, api = open_server
    generated = add_hook(api, receiver.url + "?generated")
    chosen = add_hook(api, receiver.url + "?chosen", secret="s3cret-s3cret")
    assert generated["secret"].startswith("whsec_") and chosen["secret"] == "s3cret-s3cret"
    api.post(f"/api/v1/webhooks/{generated['id']}/test")
    api.post(f"/api/v1/webhooks/{chosen['id']}/test")
    requests = {r.path.split("?")[1]: r for r in receiver.wait_for(2)}
    for hook in (generated, chosen):
        api.delete(f"/api/v1/webhooks/{hook['id']}")

    for name, secret, key, library_secret in [
            ("generated", generated["secret"],
             base64.b64decode(generated["secret"][len("whsec_"):]), generated["secret"]),
            ("chosen", "s3cret-s3cret", b"s3cret-s3cret",
             "whsec_" + base64.b64encode(b"s3cret-s3cret").decode())]:
        request = requests[name]
        h = request.headers
        assert h["webhook-id"] == h["X-Ganwatch-Delivery"]
        assert abs(int(h["webhook-timestamp"]) - time.time()) < 120
        # the spec, independently
        assert h["webhook-signature"] == spec_signature(key, h["webhook-id"],
                                                        h["webhook-timestamp"], request.body)
        mac = hmac.new(key, f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode()
                       + request.body, hashlib.sha256).hexdigest()
        assert h["X-Ganwatch-Signature"] == f"t={h['webhook-timestamp']},v1={mac}"
        # the standardwebhooks package, with the key as whsec_ + base64 and as bytes
        for library in (StandardWebhook(library_secret), StandardWebhook(key)):
            assert library.verify(request.body, standard_headers(h))["event"] == "test"
        # ours
        assert verify_headers(secret, h, request.body)
        assert verify_headers(secret, {k: v for k, v in h.items()
                                       if not k.lower().startswith("webhook-")}, request.body)
        assert verify_signature(secret, h["X-Ganwatch-Signature"], request.body,
                                delivery_id=h["X-Ganwatch-Delivery"])
        for headers, body in tampered(request):
            with pytest.raises(WebhookVerificationError):
                StandardWebhook(key).verify(body, standard_headers(headers))
            assert not verify_headers(secret, headers, body)
            assert not verify_headers(secret, {k: v for k, v in headers.items()
                                               if not k.lower().startswith("webhook-")}, body)
            assert not verify_signature(secret, headers["X-Ganwatch-Signature"], body,
                                        delivery_id=headers["X-Ganwatch-Delivery"])
        assert not verify_headers("another-secret", h, request.body)


def test_a_whsec_secret_must_be_base64(open_server):
    _, api = open_server
    for bad in ("whsec_not*base64!", "whsec_"):
        response = api.post("/api/v1/webhooks", json={"url": PUBLIC_URL, "secret": bad,
                                                      "enabled": False})
        assert response.status_code == 422 and "secret" in str(response.json()["detail"])
    good = add_hook(api, PUBLIC_URL, secret="whsec_" + base64.b64encode(b"k" * 24).decode(),
                    enabled=False)
    api.delete(f"/api/v1/webhooks/{good['id']}")


# -- chat formats ---------------------------------------------------------------------------

HOSTILE = "<!channel> @everyone @here <@U1> <@&123> <#C1> <https://evil.example|click> &amp; *b*"


def post_collapse(api, run_id):
    response = api.post(f"/api/v1/runs/{run_id}/points", json={
        "batch_id": uuid.uuid4().hex,
        "series": {"diversity/ratio": {"steps": list(range(60)),
                                       "values": [1.0] * 20 + [0.1] * 40}}})
    assert response.status_code == 200, response.text


def mrkdwn_texts(body: dict) -> list[str]:
    texts = [body["text"]]
    for block in body["blocks"]:
        for obj in [block.get("text"), *block.get("fields", [])]:
            if obj and obj["type"] == "mrkdwn":
                assert obj.get("verbatim") is True  # no automatic links or mentions
                texts.append(obj["text"])
    return texts


def test_hostile_run_names_are_shown_not_obeyed_in_slack_and_discord(open_server, receiver):
    server, api = open_server
    hooks = [add_hook(api, f"{receiver.url}?{fmt}", format=fmt)
             for fmt in ("slack", "discord", "generic")]
    try:
        run_id = api.post("/api/v1/runs", json={"name": HOSTILE,
                                                "rules": COLLAPSE_RULES}).json()["id"]
        post_collapse(api, run_id)
        got = {r.path.split("?")[1]: r.json() for r in receiver.wait_for(3)}
    finally:
        for hook in hooks:
            api.delete(f"/api/v1/webhooks/{hook['id']}")

    link = f"<{server.url}/runs/{run_id}#alert-"
    texts = mrkdwn_texts(got["slack"])
    assert any("&lt;!channel&gt; @everyone" in t and "&amp;amp;" in t for t in texts)
    for text in texts:
        rest = text
        if link in rest:  # our own link to the run is the only <...> allowed
            start = rest.index(link)
            rest = rest[:start] + rest[rest.index(">", start) + 1:]
        assert "<" not in rest and ">" not in rest, text

    discord = got["discord"]
    assert discord["allowed_mentions"] == {"parse": []}
    shown = [discord["content"], discord["embeds"][0]["description"],
             *(f["value"] for f in discord["embeds"][0]["fields"])]
    assert "[FIRING] Mode collapse in run " in discord["content"]
    for text in shown:
        for mention in ("@everyone", "@here", "<@U1>", "<@&123>", "<#C1>", "<https://"):
            assert mention not in text, (mention, text)
    run_field = next(f["value"] for f in discord["embeds"][0]["fields"] if f["name"] == "Run")
    assert run_field.replace("\\", "").replace("\u200b", "") == HOSTILE

    # the generic JSON body carries the name as it is: JSON needs no escaping
    assert got["generic"]["alerts"][0]["labels"]["run_name"] == HOSTILE


@given(st.text(alphabet="<>&a@!", min_size=2800, max_size=3200))
@settings(max_examples=30, deadline=None, database=None)
def test_long_slack_text_is_cut_between_entities_never_inside_one(message):
    """Slack's section text holds 3000 characters: escaped text cut to fit must not end in a
    half entity (``&am``), which Slack would show as text, nor grow past the limit."""
    facts = {"kind": "firing", "title": "NaN", "step": 1, "run_name": "r", "severity": "critical",
             "rule": "non_finite", "url": "http://127.0.0.1/runs/r", "message": message,
             "action": "lower the learning rate"}
    text = payloads.slack(facts)["blocks"][1]["text"]["text"]
    assert len(text) <= 2900
    assert not re.search(r"&[a-z]*$", text)  # every & starts a whole entity
    unescaped = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert message.startswith(unescaped) and len(unescaped) >= 2900 // len("&amp;") - 1
