"""JSON-RPC and WebSocket need a bearer token beyond loopback; per-role permissions.

The node here forces ``rpc_auth.required`` on while binding 127.0.0.1 (the code path of a
node listening beyond loopback); one test uses ``host: 0.0.0.0`` with the default config.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
import websockets
from eth_account import Account
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from web3 import AsyncWeb3, Web3
from web3.providers.persistent import WebSocketProvider

from tests.helpers import make_node
from tests.rpc_auth_env import (
    CENTER,
    ENTERPRISE,
    ENTERPRISE2,
    STRANGER,
    Activity,
    AuthEnv,
    auth_env,
    make_activity,
)
from yilian.api.app import create_app
from yilian.contracts.abi import contract_abi
from yilian.contracts.addresses import GRANTS_ADDRESS, MEMBERS_ADDRESS, RECORDS_ADDRESS
from yilian.node.rpc_tokens import TokenKey
from yilian.protocol.credit_code import to_bytes32
from yilian.protocol.rpc_login import sign_login
from yilian.sdk.admin import Admin

pytestmark = pytest.mark.timeout(300)
UNAUTHORIZED = -40100
DOMAIN = [RECORDS_ADDRESS, GRANTS_ADDRESS]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthEnv]:
    with auth_env(tmp_path_factory.mktemp("rpc-auth")) as e:
        yield e


@pytest.fixture(scope="module")
def activity(env: AuthEnv) -> Activity:
    return make_activity(env)


def result(resp: Any) -> Any:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert "error" not in body, body
    return body["result"]


def denied(resp: Any) -> str:
    assert resp.status_code == 200, resp.text
    err = resp.json()["error"]
    assert err["code"] == UNAUTHORIZED, err
    return str(err["message"])


def assert_401(resp: Any, reason: str) -> None:
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None
    assert body["error"]["code"] == UNAUTHORIZED and body["error"]["data"]["reason"] == reason
    assert resp.headers["www-authenticate"].startswith("Bearer ")


# -- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/rpc", "/"])
def test_json_rpc_without_a_token_is_401_with_a_json_rpc_error(env: AuthEnv, path: str) -> None:
    for body in ({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"},
                 [{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}]):
        assert_401(env.http.post(path, json=body), "unauthenticated")


def test_a_node_listening_beyond_loopback_needs_tokens_by_default(tmp_path: Path) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}
    wide = make_node(tmp_path / "wide", config={"host": "0.0.0.0"})
    assert_401(TestClient(create_app(wide)).post("/rpc", json=body), "unauthenticated")
    local = make_node(tmp_path / "local", config={"host": "127.0.0.1"})
    assert TestClient(create_app(local)).post("/rpc", json=body).json()["result"] == "0x0"


def test_a_valid_token_is_accepted(env: AuthEnv) -> None:
    assert result(env.rpc(env.token(ENTERPRISE), "eth_chainId")) == hex(env.chain_id)


def test_expired_forged_and_other_node_tokens_are_refused(env: AuthEnv) -> None:
    key = env.token_key
    account = Account.from_key(env.keys[ENTERPRISE]).address
    expired, _ = key.issue(subject=account, member=ENTERPRISE, role="enterprise", ttl_s=60,
                           now=time.time() - 120)
    assert_401(env.rpc(expired, "eth_blockNumber"), "token_expired")
    other, _ = TokenKey(os.urandom(32)).issue(subject=account, member=ENTERPRISE,
                                               role="auditor", ttl_s=60)
    assert_401(env.rpc(other, "eth_blockNumber"), "invalid_token")
    good = env.token(ENTERPRISE)
    head, payload, sig = good.split(".")
    assert_401(env.rpc(f"{head}.{payload}x.{sig}", "eth_blockNumber"), "invalid_token")
    assert_401(env.rpc("not-a-token", "eth_blockNumber"), "invalid_token")
    resp = env.http.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
                         headers={"Authorization": f"Basic {good}"})
    assert_401(resp, "invalid_token")


def test_a_token_claiming_a_role_its_account_lacks_is_refused(env: AuthEnv) -> None:
    account = Account.from_key(env.keys[ENTERPRISE]).address
    lying, _ = env.token_key.issue(subject=account, member=ENTERPRISE, role="auditor", ttl_s=60)
    assert_401(env.rpc(lying, "eth_blockNumber"), "membership_changed")


def test_a_suspended_members_token_stops_at_once(env: AuthEnv) -> None:
    token = env.token(ENTERPRISE2)
    assert result(env.rpc(token, "eth_blockNumber"))
    admin = Admin(env.sdk(env.code("admin")))
    admin.set_active(ENTERPRISE2, False)
    try:
        assert_401(env.rpc(token, "eth_blockNumber"), "membership_changed")
    finally:
        admin.set_active(ENTERPRISE2, True)
    assert result(env.rpc(env.token(ENTERPRISE2), "eth_blockNumber"))


def _challenge(env: AuthEnv, account: str) -> dict[str, Any]:
    resp = env.http.post("/v1/auth/challenge", json={"account": account})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _token(env: AuthEnv, account: str, nonce: str, signature: str, ttl_s: int = 600) -> Any:
    return env.http.post("/v1/auth/token", json={"account": account, "nonce": nonce,
                                                 "signature": signature, "ttl_s": ttl_s})


def test_a_challenge_is_signed_once_by_its_account_for_this_node(env: AuthEnv) -> None:
    key = env.keys[ENTERPRISE]
    account = Account.from_key(key).address
    ch = _challenge(env, account)
    assert ch["node"] == env.token_key.key_id and ch["chain_id"] == env.chain_id
    sig = sign_login(key, chain_id=env.chain_id, node=ch["node"], nonce=ch["nonce"], ttl_s=600)
    wrong_chain = sign_login(key, chain_id=env.chain_id + 1, node=ch["node"],
                             nonce=ch["nonce"], ttl_s=600)
    assert _token(env, account, ch["nonce"], wrong_chain).json()["error"]["reason"] == \
        "bad_signature"
    other_node = sign_login(key, chain_id=env.chain_id, node="00" * 8, nonce=ch["nonce"],
                            ttl_s=600)
    assert _token(env, account, ch["nonce"], other_node).status_code == 401
    first = _token(env, account, ch["nonce"], sig)
    assert first.status_code == 200, first.text
    assert first.json()["role"] == "enterprise" and first.json()["member"] == ENTERPRISE
    again = _token(env, account, ch["nonce"], sig)
    assert again.status_code == 401 and again.json()["error"]["reason"] == "bad_challenge"
    # a challenge issued to another account cannot be used by this one
    ch2 = _challenge(env, Account.from_key(env.keys[ENTERPRISE2]).address)
    sig2 = sign_login(key, chain_id=env.chain_id, node=ch2["node"], nonce=ch2["nonce"],
                      ttl_s=600)
    assert _token(env, account, ch2["nonce"], sig2).json()["error"]["reason"] == "bad_challenge"
    too_long = sign_login(key, chain_id=env.chain_id, node=ch["node"], nonce=ch["nonce"],
                          ttl_s=7200)
    assert _token(env, account, ch["nonce"], too_long, ttl_s=7200).status_code == 422


def test_an_account_of_no_member_gets_no_token(env: AuthEnv) -> None:
    ch = _challenge(env, STRANGER.address)
    sig = sign_login(STRANGER.private_key, chain_id=env.chain_id, node=ch["node"],
                     nonce=ch["nonce"], ttl_s=600)
    resp = _token(env, STRANGER.address, ch["nonce"], sig)
    assert resp.status_code == 403 and resp.json()["error"]["reason"] == "not_member"


def test_the_sdk_logs_in_with_one_call(env: AuthEnv) -> None:
    client = env.sdk(env.code("financial"))
    token = client.login_rpc(ttl_s=600)
    assert env.token_key.verify(token).role == "financial"
    assert int(client.rpc("eth_blockNumber"), 16) >= 0


# -- permissions per role ------------------------------------------------------------------------


def test_member_roles_cannot_read_raw_state_or_full_blocks(env: AuthEnv) -> None:
    grants_slot = [GRANTS_ADDRESS, "0x0", "latest"]
    for code in (ENTERPRISE, env.code("financial"), env.code("admin")):
        token = env.token(code)
        denied(env.rpc(token, "eth_getStorageAt", *grants_slot))
        denied(env.rpc(token, "eth_getProof", GRANTS_ADDRESS, ["0x0"], "latest"))
        denied(env.rpc(token, "eth_getBlockReceipts", "latest"))
        denied(env.rpc(token, "eth_getBlockByNumber", "latest", True))
        assert result(env.rpc(token, "eth_getBlockByNumber", "latest", False))["number"]
    for code in (env.code("auditor"), CENTER):
        token = env.token(code)
        assert result(env.rpc(token, "eth_getStorageAt", *grants_slot)).startswith("0x")
        assert isinstance(result(env.rpc(token, "eth_getBlockReceipts", "latest")), list)
        assert result(env.rpc(token, "eth_getBlockByNumber", "latest", True))["number"]


def test_member_calls_may_read_the_registry_but_not_the_grants(
        env: AuthEnv, activity: Activity) -> None:
    get_grant = {"to": GRANTS_ADDRESS, "data": "0x" + contract_abi("Grants").encode_call(
        "get_grant", activity.to_bank["grant_id"]).hex()}
    role_of = {"to": MEMBERS_ADDRESS, "data": "0x" + contract_abi("Members").encode_call(
        "role_of", STRANGER.address).hex()}
    token = env.token(ENTERPRISE2)
    assert "registry" in denied(env.rpc(token, "eth_call", get_grant, "latest"))
    denied(env.rpc(token, "eth_estimateGas", get_grant))
    denied(env.rpc(token, "eth_call", {"data": get_grant["data"]}, "latest"))  # creation
    assert int(result(env.rpc(token, "eth_call", role_of, "latest")), 16) == 0
    transfer = {"from": STRANGER.address, "to": Account.create().address, "value": "0x1"}
    assert int(result(env.rpc(token, "eth_estimateGas", transfer)), 16) == 21000
    auditor = env.token(env.code("auditor"))
    assert len(result(env.rpc(auditor, "eth_call", get_grant, "latest"))) > 2


def _domain_logs(env: AuthEnv, code: str) -> list[dict[str, Any]]:
    logs = result(env.rpc(env.token(code), "eth_getLogs",
                          {"fromBlock": "0x0", "toBlock": "latest", "address": DOMAIN}))
    return list(logs)


def _topic0(name: str) -> str:
    grants = contract_abi("Grants")
    return "0x" + grants.topic(name).hex()


def test_logs_show_members_only_the_events_they_are_party_of(
        env: AuthEnv, activity: Activity) -> None:
    receipt_topic, granted_topic = _topic0("AccessReceipt"), _topic0("Granted")
    everything = _domain_logs(env, env.code("auditor"))
    assert _domain_logs(env, CENTER) == everything
    assert {receipt_topic, granted_topic} <= {e["topics"][0] for e in everything}
    assert _domain_logs(env, ENTERPRISE) == everything  # the subject is party of all here
    assert _domain_logs(env, ENTERPRISE2) == []
    bank_code = "0x" + to_bytes32(env.code("financial")).hex()
    bank = _domain_logs(env, env.code("financial"))
    assert {e["topics"][0] for e in bank} == {granted_topic, receipt_topic}
    granted = [e for e in bank if e["topics"][0] == granted_topic]
    assert len(granted) == 2 and all(e["topics"][3] == bank_code for e in granted)
    admin = _domain_logs(env, env.code("admin"))
    assert [e["topics"][0] for e in admin] == [granted_topic]
    # filters give the same answer
    token = env.token(ENTERPRISE2)
    fid = result(env.rpc(token, "eth_newFilter", {"fromBlock": "0x0", "address": DOMAIN}))
    assert result(env.rpc(token, "eth_getFilterLogs", fid)) == []


def test_members_see_only_transactions_they_sent_or_are_party_of(
        env: AuthEnv, activity: Activity) -> None:
    tx = activity.read_receipt_tx  # sent by the center, names the bank and the subject
    for code in (env.code("financial"), ENTERPRISE, env.code("auditor")):
        assert result(env.rpc(env.token(code), "eth_getTransactionReceipt", tx))["status"] == \
            "0x1"
    token = env.token(ENTERPRISE2)
    denied(env.rpc(token, "eth_getTransactionReceipt", tx))
    denied(env.rpc(token, "eth_getTransactionByHash", tx))
    own = activity.to_bank["tx_hash"]  # the enterprise's own grant transaction
    assert result(env.rpc(env.token(ENTERPRISE), "eth_getTransactionByHash", own))["hash"] == own


# -- WebSocket ---------------------------------------------------------------------------------


def test_a_websocket_without_a_valid_token_is_refused_at_the_handshake(env: AuthEnv) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}):
        with pytest.raises(WebSocketDenialResponse) as err, \
                env.http.websocket_connect("/ws", headers=headers):
            pass
        assert err.value.status_code == 401
        assert err.value.json()["error"]["code"] == UNAUTHORIZED


def test_a_websocket_closes_when_its_token_expires(env: AuthEnv) -> None:
    token, _ = env.token_key.issue(subject="operator:test", member="", role="auditor", ttl_s=2)
    with env.http.websocket_connect("/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
        ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
        assert ws.receive_json()["result"] == hex(env.chain_id)
        message = ws.receive()
    assert message["type"] == "websocket.close" and message["code"] == 1008
    assert "expired" in message["reason"]


def _subscribe(ws: Any) -> None:
    for i, params in enumerate((["logs", {"address": DOMAIN}], ["newHeads"])):
        ws.send_json({"jsonrpc": "2.0", "id": i, "method": "eth_subscribe", "params": params})
        assert ws.receive_json()["result"].startswith("0x")


def _logs_until(ws: Any, block: int) -> list[Any]:
    """Log notifications received before the head of ``block`` (logs come first)."""
    logs = []
    while True:
        note = ws.receive_json()["params"]["result"]
        if "topics" in note:
            logs.append(note)
        elif int(note["number"], 16) >= block:
            return logs


def test_log_subscriptions_are_filtered_like_get_logs(env: AuthEnv, activity: Activity) -> None:
    outsider = {"Authorization": f"Bearer {env.token(ENTERPRISE2)}"}
    auditor = {"Authorization": f"Bearer {env.token(env.code('auditor'))}"}
    with env.http.websocket_connect("/ws", headers=outsider) as ws_out, \
            env.http.websocket_connect("/ws", headers=auditor) as ws_aud:
        _subscribe(ws_out)
        _subscribe(ws_aud)
        from yilian.sdk.enterprise import Enterprise

        g = Enterprise(env.sdk(ENTERPRISE), ENTERPRISE).grant(
            env.code("financial"), types=["basic"], purpose="ws", max_reads=1, valid_for_s=60)
        assert [n["transactionHash"] for n in _logs_until(ws_aud, g["block_number"])] == \
            [g["tx_hash"]]
        assert _logs_until(ws_out, g["block_number"]) == []


# -- unmodified web3.py ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(env: AuthEnv) -> Iterator[str]:
    """The same node's app on a real socket (127.0.0.1, auth forced on)."""
    server = uvicorn.Server(uvicorn.Config(create_app(env.node), host="127.0.0.1", port=0,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_web3_http_provider_sends_the_token_as_a_header(env: AuthEnv, served: str) -> None:
    token = env.token(env.code("financial"))
    w3 = Web3(Web3.HTTPProvider(f"http://{served}/rpc",
                                request_kwargs={"headers": {"Authorization": f"Bearer {token}"}}))
    assert w3.eth.chain_id == env.chain_id and w3.eth.block_number >= 0
    bare = Web3(Web3.HTTPProvider(f"http://{served}/rpc"))
    with pytest.raises(requests.HTTPError, match="401"):
        bare.eth.block_number  # noqa: B018


def test_web3_websocket_provider_sends_the_token_at_the_handshake(env: AuthEnv,
                                                                  served: str) -> None:
    token = env.token(env.code("financial"))

    async def run(headers: dict[str, str]) -> int:
        async with AsyncWeb3(WebSocketProvider(
                f"ws://{served}/ws", websocket_kwargs={"additional_headers": headers})) as w3:
            return int(await w3.eth.chain_id)

    assert asyncio.run(run({"Authorization": f"Bearer {token}"})) == env.chain_id

    async def bare() -> None:
        async with websockets.connect(f"ws://{served}/ws"):
            pass

    with pytest.raises(websockets.InvalidStatus) as err:
        asyncio.run(bare())
    assert err.value.response.status_code == 401
    assert b"-40100" in err.value.response.body
