"""Who may grant, when a grant stops working, and which node a signed request is for, over
the in-process REST API (the node and helpers of ``test_domain_api``).

* a grant by anyone but the owner of what it covers is refused before the mempool
  (``not_owner``, naming the owner) and never reaches the subject's history;
* a suspended owner's grants pause (``owner_inactive``); a retry under an earlier read id
  releases nothing once the grant has expired;
* a signed request names the node that serves it: accepted at that node, refused at any
  other (``wrong_audience``), so it cannot be replayed once per node;
* forwarding to a custodian passes on only a key-service answer (a fake custodian on
  loopback plays the hostile party).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_domain_api import (
    ACCOUNTS,
    CENTER,
    ENTERPRISE,
    ENTERPRISE2,
    Env,
    Published,
    assert_refused,
    bank,
    enterprise,
    publish_basic,
    running_env,
)

from yilian.api.app import create_app
from yilian.contracts.addresses import GRANTS_ADDRESS, RECORDS_ADDRESS
from yilian.network_configs.generate import center_code
from yilian.node.config import parse_config
from yilian.node.service import Node
from yilian.protocol import envelope, standard
from yilian.protocol.credit_code import to_bytes32
from yilian.protocol.record_ids import record_id_for
from yilian.sdk.admin import Admin
from yilian.sdk.center import Center
from yilian.sdk.enterprise import Enterprise
from yilian.sdk.errors import Refused
from yilian.sdk.grantee import Grantee

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with running_env(tmp_path_factory.mktemp("domain-owners")) as out:
        yield out


@pytest.fixture(scope="module")
def published(env: Env) -> Published:
    return publish_basic(env)


def _send_raw(env: Env, raw: str) -> dict[str, Any]:
    out = env.rpc("eth_sendRawTransaction", raw)
    assert "error" in out, out
    return dict(out["error"])


def _grant_tx(env: Env, granter: str, *, subject: str = ENTERPRISE, types: int = 0,
              record_id: bytes = b"\0" * 32, grantee: str | None = None) -> str:
    client = env.member_sdk(granter)
    return client.sign_call("Grants", GRANTS_ADDRESS, "grant",
                            to_bytes32(grantee or env.member("financial")["id"]),
                            to_bytes32(subject), types, record_id, "owner check",
                            int(time.time()) + 600, 1)


# -- only owners grant ----------------------------------------------------------------------


def test_a_grant_by_a_non_owner_is_refused_before_the_mempool_naming_the_owner(
        env: Env, published: Published) -> None:
    bank_code = env.member("financial")["id"]
    credit = 1 << int(standard.RecordType.CREDIT)
    basic = 1 << int(standard.RecordType.BASIC)
    cases = [
        # an enterprise over center-owned types (it owns no credit record about itself)
        (ENTERPRISE, {"types": credit}, "owned by the center that provides them"),
        # another enterprise over the subject's records
        (ENTERPRISE2, {"types": basic}, f"only the subject {ENTERPRISE} may grant"),
        # a bank granting to itself
        (bank_code, {"types": basic, "grantee": bank_code},
         f"only the subject {ENTERPRISE} may grant"),
        # a record grant by a non-owner of the record (the subject owns it)
        (ENTERPRISE2, {"record_id": bytes.fromhex(published.record_id[2:])},
         f"only the record's owner {ENTERPRISE} may grant access to it"),
    ]
    for granter, change, owner_text in cases:
        err = _send_raw(env, _grant_tx(env, granter, **change))
        assert err["data"]["reason"] == "not_owner", err
        assert owner_text in err["message"] and granter in err["message"], err
    # through REST the same refusal, and the subject's history has no such grant
    with pytest.raises(Refused) as refused:
        enterprise(env).grant(bank_code, types=["credit"], purpose="not mine",
                              max_reads=1, valid_for_s=600)
    assert refused.value.reason == "not_owner" and "center that provides" in str(refused.value)
    history = env.call(env.member("auditor")["privateKey"], "GET",
                       f"/v1/grants?subject={ENTERPRISE}").json()
    assert all(g["purpose"] not in ("owner check", "not mine") for g in history), history
    # the owner itself passes the same check
    assert Enterprise(env.member_sdk(ENTERPRISE), ENTERPRISE).grant(
        bank_code, types=["basic"], purpose="mine", max_reads=1, valid_for_s=600)["grant_id"]


# -- grants that stop working ---------------------------------------------------------------


def test_a_retry_after_the_grant_expired_releases_no_key(env: Env,
                                                         published: Published) -> None:
    expires_at = int(time.time()) + 4
    grant = enterprise(env).grant(env.member("financial")["id"], types=["basic"],
                                  purpose="expiry on retry", max_reads=3,
                                  expires_at=expires_at)
    bank_key = env.member("financial")["privateKey"]
    path = f"/v1/records/{published.record_id}/key"
    body = {"grant_id": grant["grant_id"], "version": 1, "request_id": "0x" + "6b" * 32}
    first = env.call(bank_key, "POST", path, body)
    assert first.status_code == 200, first.text
    time.sleep(max(0.0, expires_at - time.time()) + 1.0)
    assert_refused(env.call(bank_key, "POST", path, body), 403, "grant_expired")


def test_a_suspended_owners_grants_pause_until_it_is_reactivated(env: Env) -> None:
    payload = standard.example_record("basic", ENTERPRISE2)
    record = Center(env.sdk(env.center_key)).publish_record(
        "basic", ENTERPRISE2, payload, owner="subject", client_id="suspended-owner")
    grant = Enterprise(env.member_sdk(ENTERPRISE2), ENTERPRISE2).grant(
        env.member("financial")["id"], types=["basic"], purpose="owner suspension",
        max_reads=5, valid_for_s=600)
    admin = Admin(env.sdk(env.member("admin")["privateKey"]))
    admin.set_active(ENTERPRISE2, False)
    try:
        with pytest.raises(Refused) as err:
            bank(env).read(record.record_id, grant["grant_id"])
        assert err.value.reason == "owner_inactive" and err.value.status == 403, err.value
    finally:
        admin.set_active(ENTERPRISE2, True)
    out = bank(env).read(record.record_id, grant["grant_id"])
    assert out.plaintext == standard.canonical_bytes("basic", payload, subject=ENTERPRISE2)


# -- a signed request is for one node -------------------------------------------------------


@pytest.fixture(scope="module")
def node_b(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A second node of the same network (same genesis, no center account)."""
    home: Path = tmp_path_factory.mktemp("node-b")
    (home / "genesis.json").write_text((env.node.home / "genesis.json").read_text())
    config = {"name": "b", "genesis_file": "genesis.json", "data_dir": "data"}
    (home / "config.json").write_text(json.dumps(config))
    node = Node(parse_config(config), home)
    try:
        node.start()
        yield TestClient(create_app(node))
    finally:
        node.stop()


def test_a_request_accepted_by_one_node_is_refused_at_another(env: Env,
                                                              node_b: TestClient) -> None:
    assert env.http.get("/healthz").json()["audience"] == CENTER
    assert node_b.get("/healthz").json()["audience"] == "node:b"
    path = f"/v1/members/{ENTERPRISE}"
    key = env.member("auditor")["privateKey"]
    for_a = env.headers(key, "GET", path)  # signed for node A (its center's code)
    assert env.http.get(path, headers=for_a).status_code == 200
    assert_refused(node_b.get(path, headers=for_a), 401, "wrong_audience")
    for_b = env.headers(key, "GET", path, audience="node:b")
    assert node_b.get(path, headers=for_b).status_code == 200
    assert_refused(env.http.get(path, headers=for_b), 401, "wrong_audience")


def test_a_key_request_must_name_the_records_custodian(env: Env,
                                                       published: Published) -> None:
    grant = enterprise(env).grant(env.member("financial")["id"], types=["basic"],
                                  purpose="audience", max_reads=2, valid_for_s=600)
    bank_key = env.member("financial")["privateKey"]
    path = f"/v1/records/{published.record_id}/key"
    body = {"grant_id": grant["grant_id"], "version": 1}
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json",
               **env.headers(bank_key, "POST", path, raw, audience="node:b")}
    assert_refused(env.http.post(path, content=raw, headers=headers), 401, "wrong_audience")


# -- forwarding passes on only a key-service answer -----------------------------------------


class _FakeCustodian:
    """A hostile custodian on loopback: answers every POST with ``self.answer``."""

    def __init__(self) -> None:
        self.answer: tuple[int, dict[str, str], bytes] = (200, {}, b"{}")
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, body = fake.answer
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def fake_custodian(env: Env) -> Iterator[tuple[_FakeCustodian, str, str]]:
    """(server, record id, custodian code): a center registered by the admin with the fake
    server as its endpoint, and a record it published."""
    fake = _FakeCustodian()
    code = center_code(2)
    account = ACCOUNTS[9]  # authorised at genesis, no member yet
    Admin(env.sdk(env.member("admin")["privateKey"])).add_member(
        code, "center", "交易中心 fake", account=account.address,
        enc_key=envelope.generate_enc_keypair("standard").public, endpoint=fake.url)
    client = env.sdk(account.private_key)
    rid = record_id_for(to_bytes32(code), "fake-1")
    raw = client.sign_call("Records", RECORDS_ADDRESS, "publish", rid, 1, 1,
                           to_bytes32(ENTERPRISE), to_bytes32(code), 1,
                           envelope.digest("standard", b"sealed"), b"sealed", b"")
    out = env.rpc("eth_sendRawTransaction", raw)
    assert "result" in out, out
    assert client.wait_receipt(out["result"], timeout=30)["status"] == "0x1"
    try:
        yield fake, "0x" + rid.hex(), code
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def _key_answer(record_id: str, **extra: Any) -> dict[str, Any]:
    return {"record_id": record_id, "version": 1, "wrapped_key": "0x" + "ab" * 80,
            "receipt_tx": "0x" + "cd" * 32, "receipt_block_number": 7,
            "receipt_block_hash": "0x" + "ef" * 32, "custodian": "fake", **extra}


def test_forwarding_passes_on_only_a_key_service_answer(
        env: Env, fake_custodian: tuple[_FakeCustodian, str, str]) -> None:
    fake, record_id, code = fake_custodian
    bank_key = env.member("financial")["privateKey"]
    path = f"/v1/records/{record_id}/key"

    def ask() -> Any:
        raw = json.dumps({"grant_id": 1, "version": 1}).encode()
        headers = {"Content-Type": "application/json",
                   **env.headers(bank_key, "POST", path, raw, audience=code)}
        return env.http.post(path, content=raw, headers=headers)

    hostile = [
        (302, {"Location": "http://127.0.0.1:1/steal"}, _key_answer(record_id)),
        (301, {"Location": env.node.config.name}, {"error": {"reason": "x", "message": "y"}}),
        (200, {}, {"hello": "world"}),
        (200, {}, _key_answer("0x" + "99" * 32)),  # a key for another record
        (200, {}, _key_answer(record_id, extra="<script>")),
        (200, {}, [_key_answer(record_id)]),
        (201, {}, _key_answer(record_id)),
        (403, {}, {"detail": "FastAPI shape"}),
        (403, {}, {"error": {"reason": "Grant Revoked!", "message": "m"}}),
        (500, {}, {"error": {"reason": "boom"}}),
    ]
    for status, headers, body in hostile:
        fake.answer = (status, headers, json.dumps(body).encode())
        resp = ask()
        err = assert_refused(resp, 502, "bad_custodian_answer")
        assert code in err["message"], (status, body)
    fake.answer = (200, {}, b"not json")
    assert_refused(ask(), 502, "bad_custodian_answer")
    # the key-service shapes pass, and an error keeps only its reason and message
    fake.answer = (200, {}, json.dumps(_key_answer(record_id)).encode())
    ok = ask()
    assert ok.status_code == 200 and ok.json() == _key_answer(record_id), ok.text
    fake.answer = (403, {}, json.dumps({"error": {"reason": "grant_revoked", "message": "no",
                                                  "junk": "<script>"}}).encode())
    refused = ask()
    assert refused.status_code == 403
    assert refused.json() == {"error": {"reason": "grant_revoked", "message": "no"}}


def test_the_sdk_names_the_custodian_of_a_key_request(
        env: Env, fake_custodian: tuple[_FakeCustodian, str, str]) -> None:
    """Grantee.read signs its key request for the record's custodian, not the node it
    talks to: the forwarded request reaches the fake custodian and its answer comes back."""
    fake, record_id, _ = fake_custodian
    fake.answer = (403, {}, json.dumps({"error": {"reason": "grant_revoked",
                                                  "message": "revoked"}}).encode())
    with pytest.raises(Refused) as err:
        Grantee(env.member_sdk(env.member("financial")["id"])).read(record_id, 1)
    assert err.value.reason == "grant_revoked", err.value
