"""The domain REST API (/v1) in process: one node with the domain contracts and a key
service, driven through FastAPI's TestClient, partly through the SDK.

One node serves the whole module (it runs its single-validator block producer, so every
write really commits in a block). The multi-process, multi-center flow is in
``test_records_e2e.py``; this module is the fast layer: authentication and its refusals,
publishing, grants and reads, history, members, and the node's admission checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.domain_node import domain_node, in_process_sdk, new_center
from yilian.api.app import create_app
from yilian.api.json_guard import MAX_JSON_DEPTH
from yilian.contracts.addresses import GRANTS_ADDRESS, MEMBERS_ADDRESS, RECORDS_ADDRESS
from yilian.contracts.addresses import ROLE_ENTERPRISE as ENTERPRISE_ROLE
from yilian.network_configs.generate import center_code, dev_members, member_seed
from yilian.network_configs.local import dev_accounts
from yilian.node.service import Node
from yilian.node.storage import REQUESTS
from yilian.protocol import envelope, standard
from yilian.protocol.credit_code import make_code, to_bytes32
from yilian.protocol.record_ids import record_id_for
from yilian.protocol.signed_request import (
    ACCOUNT_HEADER,
    EXPIRES_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    sign_request,
)
from yilian.sdk.auditor import Auditor
from yilian.sdk.center import Center
from yilian.sdk.client import Client
from yilian.sdk.enterprise import Enterprise
from yilian.sdk.errors import Refused
from yilian.sdk.grantee import Grantee

pytestmark = pytest.mark.timeout(300)

ENTERPRISE = "914403001922038216"  # dev member 1, the records' subject and owner
ENTERPRISE2 = "9144030071526726XG"  # dev member 2: holds no grant
CENTER = center_code(1)
ACCOUNTS = dev_accounts()
STRANGER = ACCOUNTS[7]  # a funded, authorised dev account that belongs to no member
NEW_MEMBER_ACCOUNT = ACCOUNTS[8]


@dataclass
class Env:
    node: Node
    http: TestClient
    center_key: str
    members: list[dict[str, Any]]  # generate.dev_members: id, role, keys

    @property
    def chain_id(self) -> int:
        return self.node.genesis.chain_id

    def member(self, role: str, index: int = 0) -> dict[str, Any]:
        return [m for m in self.members if m["role"] == role][index]

    def by_code(self, code: str) -> dict[str, Any]:
        return next(m for m in self.members if m["id"] == code)

    def sdk(self, key: str, enc: str | None = None) -> Client:
        return in_process_sdk(self.http, key, enc)

    def member_sdk(self, code: str) -> Client:
        m = self.by_code(code)
        return self.sdk(m["privateKey"], m["encPrivateKey"])

    def headers(self, key: str, method: str, path: str, body: bytes = b"",
                **kw: Any) -> dict[str, str]:
        kw.setdefault("audience", CENTER)  # the node's audience: its center's code
        return sign_request(key, chain_id=self.chain_id, method=method, path=path, body=body,
                            **kw).as_dict()

    def call(self, key: str | None, method: str, path: str, body: Any = None,
             http: TestClient | None = None) -> httpx.Response:
        """A /v1 request signed by ``key`` (unsigned when None)."""
        raw = b"" if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers.update(self.headers(key, method, path, raw))
        return (http or self.http).request(method, path, content=raw or None, headers=headers)

    def rpc(self, method: str, *params: Any) -> dict[str, Any]:
        out = self.http.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": method,
                                           "params": list(params)})
        assert out.status_code == 200, out.text
        return dict(out.json())


def error_of(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"}, body
    assert {"reason", "message"} <= set(body["error"]), body
    return dict(body["error"])


def assert_refused(resp: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err = error_of(resp)
    assert err["reason"] == reason, err
    return err


@contextlib.contextmanager
def running_env(home: Path) -> Iterator[Env]:
    """One node with the domain contracts and a key service, in ``home``."""
    center, center_key = new_center(home)
    members = dev_members("standard", ACCOUNTS)
    node = domain_node(home, ACCOUNTS, [center, *map(member_seed, members)], [center.account],
                       block_interval_ms=100)  # writes wait for their block
    try:
        node.start()
        yield Env(node, TestClient(create_app(node)), center_key, members)
    finally:
        node.stop()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with running_env(tmp_path_factory.mktemp("domain-api")) as out:
        yield out


@dataclass(frozen=True)
class Published:
    record_id: str
    payload: dict[str, Any]
    out: Any  # sdk.center.PublishedRecord


@pytest.fixture(scope="module")
def published(env: Env) -> Published:
    return publish_basic(env)


def publish_basic(env: Env) -> Published:
    """A basic record about ENTERPRISE (owned by it), published through the SDK."""
    payload = standard.example_record("basic", ENTERPRISE)
    out = Center(env.sdk(env.center_key)).publish_record(
        "basic", ENTERPRISE, payload, owner="subject", client_id="api-basic-1")
    return Published(out.record_id, payload, out)


def enterprise(env: Env) -> Enterprise:
    return Enterprise(env.member_sdk(ENTERPRISE), ENTERPRISE)


def bank(env: Env) -> Grantee:
    return Grantee(env.member_sdk(env.member("financial")["id"]))


def plaintext_of(p: Published) -> bytes:
    return standard.canonical_bytes("basic", p.payload, subject=ENTERPRISE)


@pytest.fixture(scope="module")
def revoked_grant(env: Env, published: Published) -> int:
    """A grant to the bank, read once, then revoked by the enterprise."""
    ent = enterprise(env)
    g = ent.grant(env.member("financial")["id"], types=["basic"], purpose="revocation check",
                  max_reads=5, valid_for_s=3600)
    bank(env).read(published.record_id, g["grant_id"])
    revoked = ent.revoke(g["grant_id"])
    assert revoked["revoked"] is True and revoked["grant_id"] == g["grant_id"]
    assert revoked["tx_hash"].startswith("0x") and revoked["block_number"] > 0
    return int(g["grant_id"])


# -- the node ---------------------------------------------------------------------------------


def test_node_has_domain_and_key_service(env: Env) -> None:
    health = env.http.get("/healthz").json()
    assert health["chainId"] == env.chain_id and health["suite"] == "standard"
    assert env.node.domain.enabled and env.node.key_service is not None
    assert health["center"] == env.node.key_service.account.checksum


# -- publishing -------------------------------------------------------------------------------


def test_center_publishes_through_rest_and_a_retry_is_idempotent(env: Env) -> None:
    body = {"type": "qualification", "subject": ENTERPRISE, "owner": "subject",
            "payload": standard.example_record("qualification", ENTERPRISE),
            "client_id": "rest-qual-1"}
    first = env.call(env.center_key, "POST", "/v1/records", body)
    assert first.status_code == 200, first.text
    out = first.json()
    assert out["already_published"] is False and out["version"] == 1
    assert out["record_id"].startswith("0x") and len(out["record_id"]) == 66
    receipt = env.rpc("eth_getTransactionReceipt", out["tx_hash"])["result"]
    assert receipt["status"] == "0x1" and receipt["blockHash"] == out["block_hash"]
    assert int(receipt["blockNumber"], 16) == out["block_number"]
    again = env.call(env.center_key, "POST", "/v1/records", body)  # freshly signed retry
    assert again.status_code == 200, again.text
    second = again.json()
    assert second["already_published"] is True
    for key in ("record_id", "version", "digest", "tx_hash", "block_number", "block_hash"):
        assert second[key] == out[key], key


def test_sdk_center_publish_and_retry(env: Env, published: Published) -> None:
    assert published.out.version == 1 and not published.out.already_published
    again = Center(env.sdk(env.center_key)).publish_record(
        "basic", ENTERPRISE, published.payload, owner="subject", client_id="api-basic-1")
    assert again.already_published
    assert (again.record_id, again.version, again.tx_hash) == (
        published.record_id, 1, published.out.tx_hash)


def test_a_client_id_reused_for_other_content_is_refused(env: Env) -> None:
    payload = dict(standard.example_record("qualification", ENTERPRISE))
    body = {"type": "qualification", "subject": ENTERPRISE, "owner": "subject",
            "payload": payload, "client_id": "rest-qual-reuse"}
    first = env.call(env.center_key, "POST", "/v1/records", body)
    assert first.status_code == 200, first.text
    changed = {**body, "payload": {**payload, "level": "乙级 Grade B"}}
    resp = env.call(env.center_key, "POST", "/v1/records", changed)
    assert_refused(resp, 409, "client_id_reused")
    assert "version 2" in resp.json()["error"]["message"]
    update = env.call(env.center_key, "POST", "/v1/records", {**changed, "version": 2})
    assert update.status_code == 200, update.text
    assert update.json()["version"] == 2 and not update.json()["already_published"]
    # retrying that update is idempotent too
    again = env.call(env.center_key, "POST", "/v1/records", {**changed, "version": 2})
    assert again.status_code == 200 and again.json()["already_published"] is True


@pytest.mark.parametrize("role", ["financial", "admin", "enterprise"])
def test_a_non_center_account_cannot_publish(env: Env, role: str) -> None:
    body = {"type": "basic", "subject": ENTERPRISE, "client_id": f"by-{role}",
            "payload": standard.example_record("basic", ENTERPRISE)}
    resp = env.call(env.member(role)["privateKey"], "POST", "/v1/records", body)
    assert_refused(resp, 403, "not_center_staff")


def test_invalid_record_is_refused_naming_the_fields(env: Env) -> None:
    payload = standard.example_record("basic", ENTERPRISE)
    payload["region_code"] = "12345X"
    payload["registered_capital"] = "-5"
    resp = env.call(env.center_key, "POST", "/v1/records", {
        "type": "basic", "subject": ENTERPRISE, "payload": payload, "client_id": "bad-1"})
    err = assert_refused(resp, 422, "invalid_record")
    assert {f["field"] for f in err["fields"]} >= {"region_code", "registered_capital"}
    assert all(f["message"] for f in err["fields"])


def test_unknown_record_type_is_refused(env: Env) -> None:
    resp = env.call(env.center_key, "POST", "/v1/records", {
        "type": "horoscope", "subject": ENTERPRISE, "client_id": "bad-type",
        "payload": standard.example_record("basic", ENTERPRISE)})
    err = assert_refused(resp, 422, "invalid_record")
    assert [f["field"] for f in err["fields"]] == ["type"]


def test_bad_subject_check_character_is_refused(env: Env) -> None:
    wrong = ENTERPRISE[:-1] + ("7" if ENTERPRISE[-1] != "7" else "8")
    resp = env.call(env.center_key, "POST", "/v1/records", {
        "type": "credit", "subject": wrong, "client_id": "bad-2",
        "payload": standard.example_record("credit", ENTERPRISE)})
    err = assert_refused(resp, 422, "invalid_record")
    assert "check character" in err["message"]
    assert [f["field"] for f in err["fields"]] == ["subject"]


def test_unknown_body_fields_are_refused(env: Env) -> None:
    resp = env.call(env.center_key, "POST", "/v1/records", {
        "type": "basic", "subject": ENTERPRISE, "client_id": "extra", "surprise": 1,
        "payload": standard.example_record("basic", ENTERPRISE)})
    assert resp.status_code == 422, resp.text


# -- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [
    ("GET", f"/v1/members/{ENTERPRISE}"),
    ("GET", f"/v1/records?subject={ENTERPRISE}"),
    ("POST", "/v1/records"),
    ("GET", f"/v1/subjects/{ENTERPRISE}/history"),
    ("GET", "/v1/grants/1"),
])
def test_unsigned_requests_are_unauthenticated(env: Env, method: str, path: str) -> None:
    body = {"type": "basic", "subject": ENTERPRISE, "client_id": "unsigned",
            "payload": standard.example_record("basic", ENTERPRISE)} if method == "POST" else None
    err = assert_refused(env.call(None, method, path, body), 401, "unauthenticated")
    assert SIGNATURE_HEADER in err["message"]


def test_a_signed_request_is_good_once(env: Env) -> None:
    path = f"/v1/members/{ENTERPRISE}"
    headers = env.headers(env.member("financial")["privateKey"], "GET", path)
    first = env.http.get(path, headers=headers)
    assert first.status_code == 200, first.text
    assert_refused(env.http.get(path, headers=headers), 401, "replayed")


def test_a_nonce_is_consumed_once_authenticated_even_if_the_request_then_fails(
        env: Env) -> None:
    unknown = make_code("91440300MA5G00001")
    path = f"/v1/members/{unknown}"
    headers = env.headers(env.member("financial")["privateKey"], "GET", path)
    assert_refused(env.http.get(path, headers=headers), 404, "member_not_found")
    assert_refused(env.http.get(path, headers=headers), 401, "replayed")
    # A non-member's request is refused before its nonce is stored (so strangers cannot
    # fill the nonce store); repeating it is refused the same way and serves nothing.
    path = f"/v1/members/{ENTERPRISE}"
    headers = env.headers(STRANGER.private_key, "GET", path)
    assert_refused(env.http.get(path, headers=headers), 403, "not_member")
    assert_refused(env.http.get(path, headers=headers), 403, "not_member")
    assert env.node.store.get(REQUESTS, bytes.fromhex(STRANGER.address[2:]) + bytes.fromhex(
        headers["X-Yilian-Nonce"])) is None


def test_a_bad_signature_is_refused_and_does_not_burn_the_nonce(env: Env) -> None:
    key = env.member("auditor")["privateKey"]
    path = f"/v1/members/{ENTERPRISE}"
    headers = env.headers(key, "GET", path)
    # the same headers presented for another path or body do not verify
    assert_refused(env.http.get(f"/v1/members/{ENTERPRISE2}", headers=headers), 401,
                   "bad_signature")
    assert_refused(env.http.request("GET", path, headers=headers, content=b"x"), 401,
                   "bad_signature")
    # the owner of the key can still use them: a forgery never consumed the nonce
    assert env.http.get(path, headers=headers).status_code == 200


def test_a_signature_by_another_key_is_refused(env: Env) -> None:
    path = f"/v1/members/{ENTERPRISE}"
    mine = env.headers(env.member("auditor")["privateKey"], "GET", path)
    theirs = env.headers(STRANGER.private_key, "GET", path)
    forged = {**mine, SIGNATURE_HEADER: theirs[SIGNATURE_HEADER]}
    assert_refused(env.http.get(path, headers=forged), 401, "bad_signature")


def test_a_request_signed_for_another_chain_is_refused(env: Env) -> None:
    path = f"/v1/members/{ENTERPRISE}"
    headers = sign_request(env.member("auditor")["privateKey"], chain_id=env.chain_id + 1,
                           audience=CENTER, method="GET", path=path).as_dict()
    assert_refused(env.http.get(path, headers=headers), 401, "bad_signature")


def test_an_expired_request_is_refused(env: Env) -> None:
    path = f"/v1/members/{ENTERPRISE}"
    headers = env.headers(env.member("auditor")["privateKey"], "GET", path,
                          now=time.time() - 120)
    assert_refused(env.http.get(path, headers=headers), 401, "expired")


def test_an_expiry_far_ahead_is_refused(env: Env) -> None:
    path = f"/v1/members/{ENTERPRISE}"
    headers = env.headers(env.member("auditor")["privateKey"], "GET", path,
                          now=time.time() + 3600)
    assert_refused(env.http.get(path, headers=headers), 401, "bad_auth")


@pytest.mark.parametrize(("header", "value"), [
    (ACCOUNT_HEADER, "0x1234"), (NONCE_HEADER, "XYZ"), (EXPIRES_HEADER, "tomorrow"),
    (SIGNATURE_HEADER, "0xabcd")])
def test_garbled_headers_are_bad_auth(env: Env, header: str, value: str) -> None:
    path = f"/v1/members/{ENTERPRISE}"
    headers = {**env.headers(env.member("auditor")["privateKey"], "GET", path), header: value}
    assert_refused(env.http.get(path, headers=headers), 401, "bad_auth")


def _raw_asgi_get(app: Any, path: str, headers: list[tuple[bytes, bytes]]
                  ) -> tuple[int, bytes]:
    """GET through the ASGI app with header bytes exactly as a server hands them over
    (TestClient re-encodes header values as UTF-8, a real HTTP server does not)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    with contextlib.suppress(Exception):  # Starlette re-raises after answering 500
        asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), body


def test_raw_asgi_helper_matches_the_test_client(env: Env) -> None:
    path = f"/v1/members/{ENTERPRISE}"
    signed = env.headers(env.member("auditor")["privateKey"], "GET", path)
    raw = [(b"host", b"testserver")] + [(k.lower().encode(), v.encode("latin-1"))
                                        for k, v in signed.items()]
    status, body = _raw_asgi_get(env.http.app, path, raw)
    assert status == 200, body
    assert json.loads(body)["id"] == ENTERPRISE


def test_a_non_ascii_digit_expiry_is_bad_auth_not_a_server_error(env: Env) -> None:
    path = f"/v1/members/{ENTERPRISE}"
    signed = env.headers(env.member("auditor")["privateKey"], "GET", path)
    signed[EXPIRES_HEADER] = "\u00b2"  # the single byte 0xB2 on the wire
    raw = [(b"host", b"testserver")] + [(k.lower().encode(), v.encode("latin-1"))
                                        for k, v in signed.items()]
    status, body = _raw_asgi_get(env.http.app, path, raw)
    assert status == 401, body
    assert json.loads(body)["error"]["reason"] == "bad_auth"


def test_an_account_of_no_member_is_refused(env: Env) -> None:
    resp = env.call(STRANGER.private_key, "GET", f"/v1/members/{ENTERPRISE}")
    err = assert_refused(resp, 403, "not_member")
    assert STRANGER.address in err["message"]


# -- request bodies ------------------------------------------------------------------------------


def test_deeply_nested_json_is_refused_and_the_node_survives(env: Env) -> None:
    depth = 10_000
    for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        resp = env.http.post("/v1/records", content=body.encode(),
                             headers={"Content-Type": "application/json"})
        err = assert_refused(resp, 400, "bad_json")
        assert str(MAX_JSON_DEPTH) in err["message"]
    # the process is alive and serves the next (signed) request
    assert env.http.get("/healthz").status_code == 200
    assert env.call(env.member("auditor")["privateKey"], "GET",
                    f"/v1/members/{ENTERPRISE}").status_code == 200


def test_a_body_over_the_limit_is_refused_with_413(env: Env) -> None:
    limit = env.node.config.rpc.max_request_bytes
    resp = env.http.post("/v1/records", content=b" " * (limit + 1),
                         headers={"Content-Type": "application/json"})
    assert_refused(resp, 413, "too_large")
    assert env.call(env.member("auditor")["privateKey"], "GET",
                    f"/v1/members/{ENTERPRISE}").status_code == 200


# -- grants and reads ------------------------------------------------------------------------------


def test_enterprise_grants_the_bank_which_reads_the_exact_plaintext(
        env: Env, published: Published) -> None:
    bank_code = env.member("financial")["id"]
    g = enterprise(env).grant(bank_code, types=["basic"], purpose="电子保函 bid guarantee",
                              max_reads=3, valid_for_s=3600)
    assert g["owner"] == ENTERPRISE and g["grantee"] == bank_code
    assert g["subject"] == ENTERPRISE and g["type_list"] == [1]
    assert g["reads"] == 0 and g["max_reads"] == 3 and g["revoked"] is False
    out = bank(env).read(published.record_id, g["grant_id"])
    assert out.plaintext == plaintext_of(published)
    assert out.data == standard.validate_record("basic", published.payload)
    assert out.rtype == standard.RecordType.BASIC and out.version == 1
    assert out.subject == ENTERPRISE
    assert out.receipt_tx and out.receipt_block_number
    receipt = env.rpc("eth_getTransactionReceipt", out.receipt_tx)["result"]
    assert receipt["status"] == "0x1"
    state = env.call(env.member("auditor")["privateKey"], "GET", f"/v1/grants/{g['grant_id']}")
    assert state.status_code == 200, state.text
    assert state.json()["reads"] == 1 and state.json()["max_reads"] == 3


def test_the_owner_reads_its_own_record_without_a_grant(env: Env,
                                                        published: Published) -> None:
    owner = Grantee(env.member_sdk(ENTERPRISE))
    out = owner.read(published.record_id, 0)
    assert out.plaintext == plaintext_of(published)
    assert out.receipt_tx is None and out.receipt_block_number is None


def test_a_member_that_is_not_the_grantee_is_refused(env: Env, published: Published) -> None:
    g = enterprise(env).grant(env.member("financial")["id"], types=["basic"],
                              purpose="only the bank", max_reads=3, valid_for_s=3600)
    other = Grantee(env.member_sdk(ENTERPRISE2))
    with pytest.raises(Refused) as err:
        other.read(published.record_id, g["grant_id"])
    assert err.value.reason == "not_grantee" and err.value.status == 403
    with pytest.raises(Refused) as err:  # and without any grant
        other.read(published.record_id, 0)
    assert err.value.reason in ("grant_not_found", "not_grantee"), err.value


def test_a_revoked_grant_stops_reads(env: Env, published: Published,
                                     revoked_grant: int) -> None:
    with pytest.raises(Refused) as err:
        bank(env).read(published.record_id, revoked_grant)
    assert err.value.reason == "grant_revoked" and err.value.status == 403


def test_the_last_allowed_read_exhausts_the_grant(env: Env, published: Published) -> None:
    g = enterprise(env).grant(env.member("financial")["id"], types=["basic"],
                              purpose="one read", max_reads=1, valid_for_s=3600)
    desk = bank(env)
    assert desk.read(published.record_id, g["grant_id"]).plaintext == plaintext_of(published)
    with pytest.raises(Refused) as err:
        desk.read(published.record_id, g["grant_id"])
    assert err.value.reason == "grant_exhausted", err.value
    state = env.call(env.member("auditor")["privateKey"], "GET", f"/v1/grants/{g['grant_id']}")
    assert state.json()["reads"] == 1


def test_a_grant_not_covering_the_record_type_is_refused(env: Env,
                                                         published: Published) -> None:
    g = enterprise(env).grant(env.member("financial")["id"], types=["qualification"],
                              purpose="qualification only", max_reads=3, valid_for_s=3600)
    with pytest.raises(Refused) as err:
        bank(env).read(published.record_id, g["grant_id"])
    assert err.value.reason == "not_covered", err.value


def test_grant_lookups(env: Env, revoked_grant: int) -> None:
    key = env.member("auditor")["privateKey"]
    one = env.call(key, "GET", f"/v1/grants/{revoked_grant}")
    assert one.status_code == 200, one.text
    assert one.json()["revoked"] is True and one.json()["reads"] == 1
    listed = env.call(key, "GET", f"/v1/grants?subject={ENTERPRISE}")
    assert listed.status_code == 200, listed.text
    entry = next(g for g in listed.json() if g["grant_id"] == revoked_grant)
    assert entry["granted"]["event"] == "Granted"
    assert_refused(env.call(key, "GET", "/v1/grants/999999"), 404, "grant_not_found")


def test_a_grant_transaction_must_call_grants(env: Env) -> None:
    ent = env.member_sdk(ENTERPRISE)
    raw = ent.sign_call("Members", MEMBERS_ADDRESS, "set_active", to_bytes32(ENTERPRISE), True)
    resp = env.http.post("/v1/grants", json={"raw_transaction": raw})
    assert_refused(resp, 422, "bad_call")


# -- history -------------------------------------------------------------------------------------


def test_the_auditor_sees_the_subject_history_in_block_order(
        env: Env, published: Published, revoked_grant: int) -> None:
    entries = Auditor(env.member_sdk(env.member("auditor")["id"])).history(ENTERPRISE)
    positions = [(e.block_number, e.log_index) for e in entries]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    events = [e.event for e in entries]
    first = {name: events.index(name) for name in
             ("RecordPublished", "Granted", "AccessReceipt", "Revoked")}
    assert first["RecordPublished"] < first["Granted"] < first["AccessReceipt"] < \
        first["Revoked"], events
    ours = [e for e in entries if e.event == "RecordPublished"
            and e.args["record_id"] == published.record_id]
    assert len(ours) == 1 and ours[0].tx_hash == published.out.tx_hash
    assert ours[0].args["subject"] == ENTERPRISE and ours[0].args["owner"] == ENTERPRISE
    assert "ciphertext" not in ours[0].args and ours[0].args["ciphertext_size"] > 0
    revoked = [e for e in entries if e.event == "Revoked"]
    assert revoked_grant in [e.args["grant_id"] for e in revoked]
    receipts = [e for e in entries if e.event == "AccessReceipt"]
    assert all(e.args["custodian"] == CENTER for e in receipts)
    assert {e.args["reader"] for e in receipts} == {env.member("financial")["id"]}
    # the receipts endpoint lists exactly the AccessReceipt entries
    listed = env.call(env.member("auditor")["privateKey"], "GET",
                      f"/v1/receipts?subject={ENTERPRISE}")
    assert listed.status_code == 200, listed.text
    assert [r["tx_hash"] for r in listed.json()] == [e.tx_hash for e in receipts]


def test_history_is_served_to_its_parties_only(env: Env, published: Published) -> None:
    """(Issue 8: a grantee sees its grants and reads, a non-party is refused; the full rule
    per role is in test_domain_privacy.py.)"""
    path = f"/v1/subjects/{ENTERPRISE}/history"
    bank_code = env.member("financial")["id"]
    bank_view = env.call(env.member("financial")["privateKey"], "GET", path)
    assert bank_view.status_code == 200, bank_view.text
    assert all(e["event"] in ("Granted", "AccessReceipt", "Revoked") for e in bank_view.json())
    assert all(e["args"].get("grantee", bank_code) == bank_code
               and e["args"].get("reader", bank_code) == bank_code for e in bank_view.json())
    assert_refused(env.call(env.by_code(ENTERPRISE2)["privateKey"], "GET", path), 403,
                   "not_party")
    assert_refused(env.call(env.by_code(ENTERPRISE2)["privateKey"], "GET",
                            f"/v1/receipts?subject={ENTERPRISE}"), 403, "not_party")
    own = env.call(env.by_code(ENTERPRISE)["privateKey"], "GET", path)
    assert own.status_code == 200 and own.json(), own.text
    center = env.call(env.center_key, "GET", path)  # the custodian of the records
    assert center.status_code == 200, center.text
    assert {e["tx_hash"] for e in center.json()} <= {e["tx_hash"] for e in own.json()}
    assert published.out.tx_hash in {e["tx_hash"] for e in center.json()}


def test_history_of_a_bad_code_is_422(env: Env) -> None:
    resp = env.call(env.member("auditor")["privateKey"], "GET", "/v1/subjects/NOPE/history")
    assert_refused(resp, 422, "invalid_credit_code")


# -- records -------------------------------------------------------------------------------------


def test_records_of_a_subject_list_their_versions(env: Env, published: Published) -> None:
    key = env.member("auditor")["privateKey"]
    resp = env.call(key, "GET", f"/v1/records?subject={ENTERPRISE}")
    assert resp.status_code == 200, resp.text
    record = next(r for r in resp.json() if r["record_id"] == published.record_id)
    assert record["type"] == 1 and record["subject"] == ENTERPRISE
    assert record["owner"] == ENTERPRISE and record["center"] == CENTER
    assert record["latest"] == 1 and record["removed"] is False
    [v1] = record["versions"]
    assert v1["version"] == 1 and v1["digest"] == published.out.digest
    assert v1["tx_hash"] == published.out.tx_hash
    assert v1["block_number"] == published.out.block_number
    assert v1["tombstone"] is False
    one = env.call(key, "GET", f"/v1/records/{published.record_id}")
    assert one.json() == record
    assert_refused(env.call(key, "GET", f"/v1/records?subject={ENTERPRISE[:-1]}0"), 422,
                   "invalid_credit_code")
    assert_refused(env.call(key, "GET", "/v1/records/0x" + "00" * 32), 404, "record_not_found")
    assert_refused(env.call(key, "GET", "/v1/records/0x1234"), 422, "bad_request")


def test_a_version_document_holds_ciphertext_not_plaintext(env: Env,
                                                           published: Published) -> None:
    resp = env.call(env.member("auditor")["privateKey"], "GET",
                    f"/v1/records/{published.record_id}/versions/1")
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["digest"] == doc["event_digest"] == published.out.digest
    ciphertext = bytes.fromhex(doc["ciphertext"][2:])
    assert envelope.digest("standard", ciphertext).hex() == doc["digest"][2:]
    assert plaintext_of(published) not in ciphertext
    assert_refused(env.call(env.member("auditor")["privateKey"], "GET",
                            f"/v1/records/{published.record_id}/versions/2"), 404,
                   "version_not_found")


# -- members -------------------------------------------------------------------------------------


def test_members_by_code_and_by_account(env: Env) -> None:
    key = env.member("auditor")["privateKey"]
    ent = env.by_code(ENTERPRISE)
    resp = env.call(key, "GET", f"/v1/members/{ENTERPRISE}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"id": ENTERPRISE, "role": "enterprise", "name": ent["name"],
                           "enc_key": ent["encPublicKey"], "endpoint": "", "active": True}
    center = env.call(key, "GET", f"/v1/members/{CENTER}").json()
    assert center["role"] == "center" and center["active"] is True
    bank_member = env.member("financial")
    by_account = env.call(key, "GET", f"/v1/members/by-account/{bank_member['account']}")
    assert by_account.status_code == 200, by_account.text
    assert by_account.json()["id"] == bank_member["id"]
    assert by_account.json()["role"] == "financial"
    assert_refused(env.call(key, "GET", f"/v1/members/by-account/{STRANGER.address}"), 404,
                   "member_not_found")
    assert_refused(env.call(key, "GET", "/v1/members/by-account/0x12"), 422, "bad_request")
    assert_refused(env.call(key, "GET", "/v1/members/123"), 422, "invalid_credit_code")


def test_the_admin_adds_a_member_and_a_non_admin_cannot(env: Env) -> None:
    new_code = make_code("91440300MA5G12345")
    enc = envelope.generate_enc_keypair("standard")
    key = env.member("auditor")["privateKey"]
    assert_refused(env.call(key, "GET", f"/v1/members/{new_code}"), 404, "member_not_found")
    # not the admin: refused before the mempool, with the reason
    intruder = env.member_sdk(ENTERPRISE)
    raw = intruder.sign_call("Members", MEMBERS_ADDRESS, "add_member", to_bytes32(new_code),
                             ENTERPRISE_ROLE, "冒名 Impostor Co.", enc.public, "",
                             NEW_MEMBER_ACCOUNT.address)
    err = assert_refused(env.http.post("/v1/members", json={"raw_transaction": raw}), 403,
                         "role")
    assert "admin" in err["message"]
    assert_refused(env.call(key, "GET", f"/v1/members/{new_code}"), 404, "member_not_found")
    # the admin
    admin = env.sdk(env.member("admin")["privateKey"])
    raw = admin.sign_call("Members", MEMBERS_ADDRESS, "add_member", to_bytes32(new_code),
                          ENTERPRISE_ROLE, "新成员 New Member Co.", enc.public, "",
                          NEW_MEMBER_ACCOUNT.address)
    resp = env.http.post("/v1/members", json={"raw_transaction": raw})
    assert resp.status_code == 200, resp.text
    assert resp.json()["block_number"] > 0
    shown = env.call(key, "GET", f"/v1/members/{new_code}")
    assert shown.status_code == 200, shown.text
    assert shown.json() == {"id": new_code, "role": "enterprise", "name": "新成员 New Member Co.",
                            "enc_key": "0x" + enc.public.hex(), "endpoint": "", "active": True}
    mine = env.call(NEW_MEMBER_ACCOUNT.private_key, "GET",
                    f"/v1/members/by-account/{NEW_MEMBER_ACCOUNT.address}")
    assert mine.status_code == 200 and mine.json()["id"] == new_code  # now a member


# -- admission checks at the node (JSON-RPC) -----------------------------------------------------


def _send_raw(env: Env, raw: str) -> dict[str, Any]:
    out = env.rpc("eth_sendRawTransaction", raw)
    assert "error" in out, out
    return dict(out["error"])


def test_a_publish_by_a_bank_is_refused_for_its_role(env: Env) -> None:
    bank_client = env.member_sdk(env.member("financial")["id"])
    raw = bank_client.sign_call("Records", RECORDS_ADDRESS, "publish", b"\x43" * 32, 1, 1,
                                to_bytes32(ENTERPRISE), to_bytes32(ENTERPRISE), 1,
                                b"\x11" * 32, b"x", b"")
    err = _send_raw(env, raw)
    assert err["data"]["reason"] == "role", err
    assert "center" in err["message"]


def test_a_publish_with_a_mismatched_digest_is_refused(env: Env) -> None:
    center = env.sdk(env.center_key)
    rid = record_id_for(to_bytes32(CENTER), "raw-publish")
    raw = center.sign_call("Records", RECORDS_ADDRESS, "publish", rid, 1, 1,
                           to_bytes32(ENTERPRISE2), to_bytes32(CENTER), 1, b"\x11" * 32,
                           b"ciphertext", b"")
    err = _send_raw(env, raw)
    assert err["data"]["reason"] == "digest_mismatch", err
    # with the right digest the same call passes admission (and commits)
    good = center.sign_call("Records", RECORDS_ADDRESS, "publish", rid, 1, 1,
                            to_bytes32(ENTERPRISE2), to_bytes32(CENTER), 1,
                            envelope.digest("standard", b"ciphertext"), b"ciphertext", b"")
    out = env.rpc("eth_sendRawTransaction", good)
    assert "result" in out, out
    receipt = center.wait_receipt(out["result"], timeout=30)
    assert receipt["status"] == "0x1"
    # an id outside the center's namespace is refused before the mempool
    squat = center.sign_call("Records", RECORDS_ADDRESS, "publish", b"\x42" * 32, 1, 1,
                             to_bytes32(ENTERPRISE2), to_bytes32(CENTER), 1,
                             envelope.digest("standard", b"ciphertext"), b"ciphertext", b"")
    err = _send_raw(env, squat)
    assert err["data"]["reason"] == "bad_record_id", err


def test_removal_is_a_tombstone_that_stops_reads_and_keeps_history(env: Env) -> None:
    center = Center(env.sdk(env.center_key))
    payload = standard.example_record("performance", ENTERPRISE)
    out = center.publish_record("performance", ENTERPRISE, payload, owner="subject",
                                client_id="to-remove")
    grant = enterprise(env).grant(env.member("financial")["id"], types=["performance"],
                                  purpose="removal", max_reads=5, valid_for_s=600)
    assert bank(env).read(out.record_id, grant["grant_id"]).plaintext == \
        standard.canonical_bytes("performance", payload, subject=ENTERPRISE)
    removed = center.remove_record(out.record_id, version=2)
    assert removed.version == 2
    again = center.remove_record(out.record_id, version=2)  # an idempotent retry
    assert again.already_published and again.tx_hash == removed.tx_hash
    record = env.call(env.center_key, "GET", f"/v1/records/{out.record_id}").json()
    assert record["removed"] is True and record["latest"] == 2
    assert [v["tombstone"] for v in record["versions"]] == [False, True]
    tomb = env.call(env.center_key, "GET", f"/v1/records/{out.record_id}/versions/2")
    assert_refused(tomb, 410, "record_removed")
    with pytest.raises(Refused) as err:
        bank(env).read(out.record_id, grant["grant_id"], version=1)
    assert err.value.reason == "not_covered", err.value  # a removed record is not shared
    history = env.call(env.member("auditor")["privateKey"], "GET",
                       f"/v1/subjects/{ENTERPRISE}/history").json()
    mine = [e for e in history if e["args"].get("record_id") == out.record_id]
    assert [e["event"] for e in mine if e["contract"] == "Records"] == [
        "RecordPublished", "RecordRemoved"]
    # another center cannot remove it
    other = env.call(env.member("financial")["privateKey"], "POST",
                     f"/v1/records/{out.record_id}/remove", {})
    assert other.status_code == 403


def test_a_signed_request_sent_many_times_at_once_is_accepted_once(env: Env) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = f"/v1/members/{ENTERPRISE}"
    headers = env.headers(env.member("auditor")["privateKey"], "GET", path)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: env.http.get(path, headers=headers).status_code,
                              range(16)))
    assert sorted(codes) == [200] + [401] * 15, codes


def test_a_retried_read_with_the_same_request_id_spends_one_read(
        env: Env, published: Published) -> None:
    grant = enterprise(env).grant(env.member("financial")["id"], types=["basic"],
                                  purpose="idempotent read", max_reads=2, valid_for_s=600)
    bank_key = env.member("financial")["privateKey"]
    path = f"/v1/records/{published.record_id}/key"
    body = {"grant_id": grant["grant_id"], "version": 1, "request_id": "0x" + "ab" * 32}
    first = env.call(bank_key, "POST", path, body)
    assert first.status_code == 200, first.text
    again = env.call(bank_key, "POST", path, body)  # freshly signed, same read id
    assert again.status_code == 200, again.text
    assert again.json()["receipt_tx"] == first.json()["receipt_tx"]
    state = env.call(bank_key, "GET", f"/v1/grants/{grant['grant_id']}").json()
    assert state["reads"] == 1
    # the same read id for another version/record is refused, not silently reused
    other = env.call(bank_key, "POST", path, {**body, "grant_id": 1})
    assert_refused(other, 409, "request_id_used")
    # a new read id spends the second (last) read; a third is refused
    second = env.call(bank_key, "POST", path, {**body, "request_id": "0x" + "cd" * 32})
    assert second.status_code == 200, second.text
    third = env.call(bank_key, "POST", path, {**body, "request_id": "0x" + "ef" * 32})
    assert_refused(third, 403, "grant_exhausted")


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", f"/v1/grants/{2**256}", None),
    ("GET", "/v1/grants/-1", None),
    ("POST", "/v1/records/0x" + "11" * 32 + "/key", {"grant_id": 2**256}),
    ("POST", "/v1/records/0x" + "11" * 32 + "/remove", {"version": 2**33}),
    ("GET", "/v1/records/0x" + "11" * 32 + f"/versions/{2**40}", None),
    ("GET", "/v1/members/by-account/0x" + "zz" * 20, None),
    ("POST", "/v1/grants", {"raw_transaction": "0xabc"}),
])
def test_out_of_range_input_is_a_client_error_not_a_crash(
        env: Env, method: str, path: str, body: Any) -> None:
    resp = env.call(env.member("auditor")["privateKey"], method, path, body)
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)


def test_a_record_too_large_for_the_chain_is_refused_up_front(env: Env) -> None:
    finding = standard.example_record("supervision", ENTERPRISE)["findings"][0]
    big = {"findings": [{**finding, "decision_number": f"深建罚〔2023〕{i}号"}
                        for i in range(150)]}
    standard.validate_record("supervision", big)  # valid per the standard, just too big
    resp = env.call(env.center_key, "POST", "/v1/records", {
        "type": "supervision", "subject": ENTERPRISE, "payload": big, "client_id": "big"})
    assert_refused(resp, 422, "record_too_large")


def test_a_suspended_owner_can_still_revoke(env: Env) -> None:
    from yilian.sdk.admin import Admin

    owner = Enterprise(env.member_sdk(ENTERPRISE2), ENTERPRISE2)
    grant = owner.grant(env.member("financial")["id"], types=["basic"], purpose="suspension",
                        max_reads=1, valid_for_s=600)
    admin = Admin(env.sdk(env.member("admin")["privateKey"]))
    admin.set_active(ENTERPRISE2, False)
    try:
        revoked = owner.revoke(grant["grant_id"])
        assert revoked["revoked"] is True
    finally:
        admin.set_active(ENTERPRISE2, True)


def test_revoke_must_name_the_grant_in_its_url(env: Env) -> None:
    grant = enterprise(env).grant(env.member("financial")["id"], types=["basic"],
                                  purpose="url check", max_reads=1, valid_for_s=600)
    client = env.member_sdk(ENTERPRISE)
    raw = client.sign_call("Grants", GRANTS_ADDRESS, "revoke", grant["grant_id"])
    resp = env.http.post(f"/v1/grants/{grant['grant_id'] + 1000}/revoke",
                         json={"raw_transaction": raw})
    assert_refused(resp, 422, "bad_call")


def test_a_request_id_cannot_fetch_the_key_again_after_revocation(
        env: Env, published: Published) -> None:
    grant = enterprise(env).grant(env.member("financial")["id"], types=["basic"],
                                  purpose="retry after revoke", max_reads=3, valid_for_s=600)
    bank_key = env.member("financial")["privateKey"]
    path = f"/v1/records/{published.record_id}/key"
    body = {"grant_id": grant["grant_id"], "version": 1, "request_id": "0x" + "5a" * 32}
    assert env.call(bank_key, "POST", path, body).status_code == 200
    enterprise(env).revoke(grant["grant_id"])
    assert_refused(env.call(bank_key, "POST", path, body), 403, "grant_revoked")


@contextlib.contextmanager
def mempool_full(node: Node) -> Iterator[None]:
    """Inside the block the mempool is full: it takes no new transaction (limit 0)."""
    limits = node.mempool.limits
    node.mempool.limits = dataclasses.replace(limits, max_size=0)
    try:
        yield
    finally:
        node.mempool.limits = limits


def test_a_full_mempool_is_503_on_every_write_route(env: Env) -> None:
    """One reason, one status (api/reasons.py): a full mempool was 503 on /v1/records but
    422 on /v1/grants; a client now retries it the same way everywhere."""
    bank_code = env.member("financial")["id"]
    raw = env.member_sdk(ENTERPRISE).sign_call(
        "Grants", GRANTS_ADDRESS, "grant", to_bytes32(bank_code), to_bytes32(ENTERPRISE),
        1 << 1, b"\x00" * 32, "full mempool", int(time.time()) + 600, 1)
    record = {"type": "basic", "subject": ENTERPRISE, "owner": "subject",
              "payload": standard.example_record("basic", ENTERPRISE),
              "client_id": "full-mempool"}
    with mempool_full(env.node):
        grant = env.http.post("/v1/grants", json={"raw_transaction": raw})
        publish = env.call(env.center_key, "POST", "/v1/records", record)
        rpc = env.rpc("eth_sendRawTransaction", raw)
    assert_refused(grant, 503, "mempool_full")
    assert_refused(publish, 503, "mempool_full")
    assert rpc["error"]["code"] == -32000, rpc
    assert rpc["error"]["data"] == {"reason": "mempool_full"}, rpc
