"""Every HTTP and WebSocket entry point under hostile input (issue 8: findings 3 and 11,
and the "Must hold" fuzz test).

One node with the domain contracts and a key service serves the module in process (its
block producer is not started: nothing hostile may get as far as a block). Every route of
the app is driven (the route list is read from the app, so a new route is covered or the
coverage test fails) with: nesting just over the limit and far over it, the regex bomb
of finding 3, bodies one byte under and over the size limit, NaN/Infinity/1e400, a wrong
JSON type in every field of every request model, lone surrogates, non-ASCII digits, huge
numbers, empty bodies and non-JSON; path segments and query values likewise. Each answer
must be a 4xx in the documented ``{"error": {"reason", "message"}}`` shape (a JSON-RPC
error object on ``/rpc``, ``/`` and ``/ws``), and nothing may be logged at ERROR level
(a logged traceback fails the test), and no exception may escape the app.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from helpers import make_node
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.domain_node import domain_node, new_center
from yilian.api.app import create_app
from yilian.network_configs.generate import dev_members, member_seed
from yilian.network_configs.local import dev_accounts
from yilian.node.audience import request_audience
from yilian.node.service import Node
from yilian.protocol import credit_code
from yilian.protocol.signed_request import sign_request

pytestmark = pytest.mark.timeout(300)

LIMIT = 32 * 1024  # the test node's max_request_bytes: "just over/under" stays cheap
BAD_CODE = "914403001922038217"  # a credit code with a wrong check character
RID = "0x" + "11" * 32  # a record id no record has
JSON_RPC_PATHS = ("/rpc", "/")
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

# Request bodies that are valid except where the hostile mutation strikes (and, for
# publishing, a subject the service refuses: nothing can reach a block).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/records"): {"type": "basic", "subject": BAD_CODE, "payload": {"a": 1},
                              "client_id": "hostile", "owner": "subject", "version": 1},
    ("POST", "/v1/records/{record_id}/remove"): {"version": 2},
    ("POST", "/v1/records/{record_id}/key"): {"grant_id": 1, "version": 1,
                                              "request_id": "0x" + "22" * 32,
                                              "enc_key": "0x" + "33" * 32},
    ("POST", "/v1/keys"): {"items": [{"record_id": RID, "grant_id": 1, "version": 1}],
                           "request_id": "0x" + "22" * 32, "enc_key": "0x" + "33" * 32},
    ("POST", "/v1/grants"): {"raw_transaction": "0x" + "00" * 8},
    ("POST", "/v1/grants/{grant_id}/revoke"): {"raw_transaction": "0x" + "00" * 8},
    ("POST", "/v1/members"): {"raw_transaction": "0x" + "00" * 8},
    ("POST", "/v1/auth/challenge"): {"account": "0x" + "00" * 20},
    ("POST", "/v1/auth/token"): {"account": "0x" + "00" * 20, "nonce": "0" * 32,
                                 "signature": "0x" + "00" * 65, "ttl_s": 60},
    ("POST", "/rpc"): {"jsonrpc": "2.0", "id": 1, "method": "eth_nope", "params": []},
    ("POST", "/"): {"jsonrpc": "2.0", "id": 1, "method": "eth_nope", "params": []},
}
QUERIES = {"/v1/records": "subject", "/v1/grants": "subject", "/v1/receipts": "subject"}
NO_INPUT = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs",
            "/docs/oauth2-redirect", "/redoc", "/static-offline-docs/swagger-ui.css")

WRONG_VALUES: list[Any] = [True, False, None, 1.5, -1, 2**300, "１２", "١", "", "\u0000",
                           [], [1], {}, {"a": [None]}, "1", "true", "0x", "\U0001f600" * 50]
TOKENS = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999", b"9" * 5000,
          b'"\\ud800"', b'"\\udfff\\ud800"', b"nul", b"tru", b"[", b"}"]
SEGMENTS = ["", " ", "0x", "0x" + "zz" * 32, "-1", "1.0", "1e400", "NaN", "Infinity", "true",
            "null", "١٢", "１２", "9" * 5000, "%00", "%ED%A0%80", "%FF", "\U0001f600", "..",
            "a%2Fb", RID, "0x" + "11" * 31, "914403001922038217", "0" * 17 + "1", "0x" + "00" * 20,
            str(2**256), "+1", " 1", "1_000"]
FIXED_BODIES = [b"", b" ", b"\t\n", b"hello", b"\xff\xfe", b"\xed\xa0\x80", b"{'a': 1}",
                b"{", b"[1,]", b"\xef\xbb\xbf{}", b"null", b"true", b"1", b'"s"', b"[]",
                b"[" * 65 + b"]" * 65, b"[" * 20_000, b'{"a":' * 70 + b"1" + b"}" * 70,
                b"[" * 65 + b'"' + b'\\"' * 5000]


def _member_account(env: Env, value: str) -> bool:
    """``value`` is the 0x address of a registered member's account."""
    text = value.strip()
    if len(text) != 42 or not text.startswith("0x"):
        return False
    try:
        account = bytes.fromhex(text[2:])
    except ValueError:
        return False
    return any(env.node.domain.member_of(account))


def _walk(routes: Any) -> Iterator[tuple[str, str]]:
    for r in routes:
        if hasattr(r, "original_router"):
            yield from _walk(r.original_router.routes)
        elif r.__class__.__name__.endswith("WebSocketRoute"):
            yield "WS", r.path
        elif r.__class__.__name__ == "Mount":  # the docs' static assets (test_api_docs)
            yield "GET", r.path + "/swagger-ui.css"
        else:
            for method in sorted(set(r.methods) - {"HEAD"}):
                yield method, r.path


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def check(self) -> None:
        lines = [f"{r.name}: {r.getMessage()} {r.exc_text or ''}" for r in self.records]
        self.records.clear()
        assert not lines, "logged at ERROR: " + "\n".join(lines)


@dataclass
class Env:
    node: Node
    http: TestClient
    key: str  # the center's account: a member, so signed requests pass authentication
    log: ErrorLog

    def request(self, method: str, path: str, body: bytes = b"",
                signed: bool = True) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if signed and path.startswith("/v1"):
            url = httpx.URL(path)  # the path as the server decodes it, and the query
            signed_path = url.path + (f"?{url.query.decode()}" if url.query else "")
            headers.update(sign_request(self.key, chain_id=self.node.genesis.chain_id,
                                        audience=request_audience(self.node),
                                        method=method, path=signed_path, body=body).as_dict())
        return self.http.request(method, path, content=body or None, headers=headers)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home: Path = tmp_path_factory.mktemp("hostile")
    accounts = dev_accounts()
    center, center_key = new_center(home)
    seeds = [center, *map(member_seed, dev_members("standard", accounts))]
    node = domain_node(home, accounts, seeds, [center.account],
                       rpc={"max_request_bytes": LIMIT})
    log = ErrorLog()
    logging.getLogger().addHandler(log)
    try:
        yield Env(node, TestClient(create_app(node)), center_key, log)
    finally:
        logging.getLogger().removeHandler(log)
        node.stop()


# -- what a right answer looks like ------------------------------------------------------------


def assert_rest_error(resp: httpx.Response, statuses: range = range(400, 500)) -> None:
    assert resp.status_code in statuses, (resp.status_code, resp.text[:300])
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err.get("reason"), str) and err["reason"], err
    assert isinstance(err.get("message"), str) and err["message"], err
    assert "Traceback" not in resp.text


def assert_rpc_error(answer: Any) -> None:
    items = answer if isinstance(answer, list) else [answer]
    assert items, answer
    for item in items:
        assert isinstance(item, dict) and item.get("jsonrpc") == "2.0", item
        assert "id" in item and "result" not in item, item
        err = item["error"]
        assert isinstance(err["code"], int) and err["code"] != -32603, item
        assert isinstance(err["message"], str) and err["message"], item


def check(env: Env, method: str, path: str, body: bytes) -> None:
    resp = env.request(method, path, body)
    if path in JSON_RPC_PATHS:
        assert resp.status_code in (200, 413, 415), (resp.status_code, resp.text[:300])
        assert_rpc_error(json.loads(resp.text))
    else:
        assert_rest_error(resp)
    env.log.check()


# -- hostile bodies ----------------------------------------------------------------------------


def _with(base: dict[str, Any], field: str, raw: bytes) -> bytes:
    """``base`` as JSON with ``field``'s value replaced by the raw bytes (maybe not JSON)."""
    marker = "__hostile_value__"
    return json.dumps({**base, field: marker}).encode().replace(f'"{marker}"'.encode(), raw)


def _sized(base: dict[str, Any], size: int) -> bytes:
    """``base`` with a padding field, exactly ``size`` bytes long."""
    empty = json.dumps({**base, "pad": ""}).encode()
    return json.dumps({**base, "pad": "x" * (size - len(empty))}).encode()


def hostile_bodies(base: dict[str, Any]) -> st.SearchStrategy[bytes]:
    fields = st.sampled_from(sorted(base))
    return st.one_of(
        st.sampled_from(FIXED_BODIES),
        st.tuples(fields, st.sampled_from(WRONG_VALUES)).map(
            lambda fv: json.dumps({**base, fv[0]: fv[1]}).encode()),
        st.tuples(fields, st.sampled_from(TOKENS)).map(lambda ft: _with(base, *ft)),
        st.tuples(fields, st.integers(65, 3000)).map(
            lambda fd: _with(base, fd[0], b"[" * fd[1] + b"]" * fd[1])),
        st.sampled_from([LIMIT - 1, LIMIT, LIMIT + 1, 4 * LIMIT]).map(
            lambda n: _sized(base, n)),
        st.binary(max_size=200),
        st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )


def _fill(path: str, segment: str) -> str:
    out = path
    for name in ("record_id", "grant_id", "version", "subject", "code", "account"):
        out = out.replace("{" + name + "}", segment)
    return out


def body_routes(env: Env) -> list[tuple[str, str]]:
    return [(m, p) for m, p in _walk(env.http.app.routes) if m == "POST"]  # type: ignore[attr-defined]


# -- the fuzz tests ----------------------------------------------------------------------------


def test_every_entry_point_is_driven(env: Env) -> None:
    routes = set(_walk(env.http.app.routes))  # type: ignore[attr-defined]
    covered = ({r for r in BODIES} | {("GET", p) for p in NO_INPUT}
               | {("WS", "/ws"), ("WS", "/")}
               | {("GET", p) for m, p in routes if m == "GET" and p.startswith("/v1")})
    assert routes <= covered, routes - covered
    assert {r for r in routes if r[0] == "POST"} == set(BODIES)


@FUZZ
@given(data=st.data())
def test_hostile_bodies_on_every_post_route(env: Env, data: st.DataObject) -> None:
    method, path = data.draw(st.sampled_from(sorted(BODIES)), label="route")
    body = data.draw(hostile_bodies(BODIES[(method, path)]), label="body")
    segment = data.draw(st.sampled_from([RID, "7", *SEGMENTS]), label="segment")
    check(env, method, _fill(path, segment), body)


@FUZZ
@given(data=st.data())
def test_hostile_paths_and_queries_on_every_get_route(env: Env, data: st.DataObject) -> None:
    routes = sorted(p for m, p in _walk(env.http.app.routes)  # type: ignore[attr-defined]
                    if m == "GET" and p.startswith("/v1"))
    path = data.draw(st.sampled_from(routes), label="route")
    value = data.draw(st.one_of(st.sampled_from(SEGMENTS), st.text(min_size=1, max_size=30)),
                      label="value")
    # Hypothesis also draws string constants it finds in the code under test, such as the
    # development members' credit codes: a valid code of a registered member is not hostile
    # (it rightly answers 200), so such values are left out.
    assume(not credit_code.is_valid(value.strip()) and not _member_account(env, value))
    raw = value in SEGMENTS and "%" in value  # deliberate raw escapes (%ED%A0%80: a surrogate)
    quoted = value if raw else urllib.parse.quote(
        value.encode("utf-8", "surrogatepass"), safe="")
    target = _fill(path, quoted or "%20") if "{" in path else f"{path}?{QUERIES[path]}={quoted}"
    check(env, "GET", target, b"")


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(frames=st.lists(hostile_bodies(BODIES[("POST", "/rpc")]), min_size=1, max_size=4),
       path=st.sampled_from(["/ws", "/"]))
def test_hostile_frames_on_the_websocket(env: Env, frames: list[bytes], path: str) -> None:
    with env.http.websocket_connect(path) as ws:
        for frame in frames:
            try:
                ws.send_text(frame.decode("utf-8"))
            except UnicodeDecodeError:
                ws.send_bytes(frame)
            assert_rpc_error(json.loads(ws.receive_text()))
            env.log.check()
        ws.send_text('{"jsonrpc":"2.0","id":5,"method":"eth_chainId"}')  # still served
        assert json.loads(ws.receive_text())["id"] == 5


@pytest.mark.parametrize("path", NO_INPUT)
def test_routes_without_input_ignore_hostile_queries_and_refuse_bodies(env: Env,
                                                                       path: str) -> None:
    for query in ("?a=NaN", "?" + "[" * 200, "?x=%ED%A0%80", ""):
        assert env.http.get(path + query).status_code == 200
    for body in FIXED_BODIES[:6]:
        assert_rest_error(env.request("POST", path, body), range(405, 406))
    env.log.check()


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/nowhere", 404), ("DELETE", "/v1/records", 405), ("PUT", "/v1/grants/1", 405),
    ("GET", "/v1/members", 405), ("POST", "/healthz", 405), ("GET", "/v1/", 404),
])
def test_routing_errors_use_the_error_shape(env: Env, method: str, path: str,
                                            status: int) -> None:
    assert_rest_error(env.request(method, path, b"{}"), range(status, status + 1))


def test_http_errors_on_json_rpc_paths_are_json_rpc_errors(env: Env) -> None:
    for path in JSON_RPC_PATHS:
        resp = env.http.get(path)
        assert resp.status_code == 405
        assert_rpc_error(resp.json())


# -- the named findings ------------------------------------------------------------------------


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_non_finite_numbers_in_a_v1_body_are_400_not_500(env: Env, token: bytes) -> None:
    body = _with(BODIES[("POST", "/v1/records/{record_id}/key")], "grant_id", token)
    resp = env.request("POST", f"/v1/records/{RID}/key", body)
    assert_rest_error(resp, range(400, 401))
    assert resp.json()["error"]["reason"] == "bad_json"
    env.log.check()


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_a_non_finite_json_rpc_id_is_a_parse_error_with_a_null_id(env: Env,
                                                                  token: bytes) -> None:
    resp = env.http.post("/rpc", content=b'{"jsonrpc":"2.0","id":' + token +
                         b',"method":"eth_chainId"}')
    json.loads(resp.text, parse_constant=lambda c: pytest.fail(f"answered {c}: not JSON"))
    assert resp.json() == {"jsonrpc": "2.0", "id": None, "error": resp.json()["error"]}
    assert resp.json()["error"]["code"] == -32700


@pytest.mark.parametrize("value", ["1", 1.0, True, "true", [1], {"a": 1}, None])
def test_grant_id_takes_only_an_integer(env: Env, value: Any) -> None:
    body = json.dumps({"grant_id": value}).encode()
    resp = env.request("POST", f"/v1/records/{RID}/key", body)
    assert_rest_error(resp, range(422, 423))
    err = resp.json()["error"]
    assert err["reason"] == "invalid_request" and "grant_id" in err["message"]
    assert [f["field"] for f in err["fields"]] == ["grant_id"]


@pytest.mark.parametrize(("model", "field"), [
    (("POST", "/v1/records"), f) for f in BODIES[("POST", "/v1/records")]] + [
    (("POST", "/v1/records/{record_id}/key"), f)
    for f in BODIES[("POST", "/v1/records/{record_id}/key")]] + [
    (("POST", "/v1/records/{record_id}/remove"), "version"),
    (("POST", "/v1/grants"), "raw_transaction"),
])
def test_a_wrong_json_type_in_any_field_is_422_naming_it(env: Env, model: tuple[str, str],
                                                         field: str) -> None:
    accepted = {"payload": dict, "type": int}.get(field, type(None))  # besides its own type
    for wrong in (True, 1.5, [], {}, "x", 2**300):
        if type(wrong) in (accepted, type(BODIES[model][field])):  # exact: bool is no int
            continue
        body = json.dumps({**BODIES[model], field: wrong}).encode()
        resp = env.request(model[0], _fill(model[1], RID), body)
        assert_rest_error(resp, range(422, 423))
        names = {f["field"].split(".")[0] for f in resp.json()["error"]["fields"]}
        assert names == {field}, (field, wrong, resp.json())


def test_a_record_type_of_true_is_not_basic(env: Env) -> None:
    body = json.dumps({**BODIES[("POST", "/v1/records")], "type": True}).encode()
    resp = env.request("POST", "/v1/records", body)
    assert_rest_error(resp, range(422, 423))
    assert resp.json()["error"]["fields"][0]["field"].startswith("type")


# -- finding 3: the regex bomb, in process ---------------------------------------------------


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[TestClient]:
    node = make_node(tmp_path)  # the default 5 MiB body limit
    try:
        yield TestClient(create_app(node))
    finally:
        node.stop()


BOMB = b"[" * 65 + b'"' + b'\\"' * (64 * 1024)  # 128 KiB; the old scan needed ~n^2/2 steps


def test_the_regex_bomb_is_answered_at_once_everywhere_while_health_answers(
        plain: TestClient) -> None:
    """Generous bounds (seconds; the scan takes milliseconds): before the fix each of these
    held the GIL for about a minute, /healthz included."""
    health: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            t = time.monotonic()
            assert plain.get("/healthz").status_code == 200
            health.append(time.monotonic() - t)

    answers: dict[str, Any] = {}

    def attack() -> None:
        answers["rpc"] = plain.post("/rpc", content=BOMB).json()
        answers["v1"] = plain.post("/v1/records", content=BOMB)
        with plain.websocket_connect("/ws") as ws:
            ws.send_text(BOMB.decode())
            answers["ws"] = json.loads(ws.receive_text())

    poller = threading.Thread(target=poll, daemon=True)
    attacker = threading.Thread(target=attack, daemon=True)
    poller.start()
    attacker.start()
    attacker.join(20)
    stop.set()
    poller.join(20)
    assert not attacker.is_alive(), "the adversarial bodies were not answered within 20 s"
    assert answers["rpc"]["error"]["code"] == -32700
    assert answers["ws"]["error"]["code"] == -32700
    assert_rest_error(answers["v1"], range(400, 401))
    assert health and max(health) < 10, health


# -- finding 3 "Must hold": a real node process ------------------------------------------------


@pytest.mark.slow
def test_a_64_kib_regex_bomb_is_answered_while_health_stays_fast(network: Any) -> None:
    """The adversarial body of finding 3 at 64 KiB, to a real node process on /rpc, /v1 and
    /ws, while another client polls /healthz. Bounds are generous (the report gives the
    measured numbers: milliseconds); before the fix each body froze the process ~12 s."""
    from websockets.sync.client import connect

    bomb = b"[" * 65 + b'"' + b'\\"' * ((64 * 1024 - 66) // 2)
    assert len(bomb) <= 64 * 1024
    base = network.rpc.rsplit("/", 1)[0]
    health: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=30) as c:
            while not stop.is_set():
                t = time.monotonic()
                assert c.get(base + "/healthz").status_code == 200
                health.append(time.monotonic() - t)
                time.sleep(0.02)

    def polls_after(n: int) -> None:
        """Wait until the poller has finished more than ``n`` polls (so /healthz is
        measured before and after the bombs, however fast they are answered)."""
        deadline = time.monotonic() + 30
        while len(health) <= n and poller.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(health) > n, "the /healthz poller finished no request"

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    polls_after(0)
    took: dict[str, float] = {}
    with httpx.Client(timeout=30) as c:
        for name, url in (("rpc", network.rpc), ("v1", base + "/v1/records")):
            t = time.monotonic()
            resp = c.post(url, content=bomb, headers={"Content-Type": "application/json"})
            took[name] = time.monotonic() - t
            assert resp.status_code in (200, 400), resp.text
    with connect(network.ws, max_size=None, open_timeout=30) as ws:
        t = time.monotonic()
        ws.send(bomb.decode())
        assert json.loads(ws.recv(timeout=30))["error"]["code"] == -32700
        took["ws"] = time.monotonic() - t
    polls_after(len(health))
    stop.set()
    poller.join(30)
    print(f"answered in {took}; /healthz max {max(health):.3f} s over {len(health)} polls")
    assert max(took.values()) < 5, took
    assert health and max(health) < 5, max(health)
