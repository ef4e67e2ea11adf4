"""Admission and bounded work on a real 4-center network (4 node processes): transactions
that used to halt or stall the chain are refused or cost only themselves while normal
transactions keep committing on every node, and a member registered after genesis sends
its own first grant at once (issue 8, findings 1, 4 and 7)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from consortium_helpers import Cluster, Load, running_cluster, sign_put, wait_for
from eth.db.atomic import AtomicDB
from eth_account import Account

from yilian.node.genesis import chain_class, load_genesis
from yilian.protocol import envelope
from yilian.protocol.credit_code import make_code
from yilian.sdk.admin import Admin
from yilian.sdk.client import Client
from yilian.sdk.enterprise import Enterprise

pytestmark = pytest.mark.slow

LOOP_INITCODE = bytes([0x5B, 0x5F, 0x56])  # JUMPDEST PUSH0 JUMP: a creation that never ends
OPERATORS = (5, 6, 7, 8)  # dev accounts of no member (genesis authorisedSenders)
ATTACKER = 9


@pytest.fixture(scope="module")
def c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("admission")) as c:
        # The ports are chosen free, then bound later: make sure no other network's
        # node (another test run on this machine) answers on them.
        genesis = load_genesis(c.home(0) / "genesis.json")
        expected = "0x" + bytes(chain_class(genesis.chain_id).from_genesis(
            AtomicDB(), genesis.genesis_params(), genesis.genesis_state()  # type: ignore[arg-type]
        ).get_canonical_head().hash).hex()
        for i in range(4):
            assert c.rpc(i, "eth_getBlockByNumber", ["0x0", False])["hash"] == expected, (
                f"{c.rpc_url(i)} is another network's node (port clash); rerun")
        yield c


def _send(c: Cluster, node: int, raw: bytes) -> dict[str, Any]:
    resp = httpx.post(c.rpc_url(node), timeout=30, json={
        "jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
        "params": ["0x" + raw.hex()]})
    return dict(resp.json())


def _attack(c: Cluster, nonce: int, **fields: Any) -> bytes:
    key = c.info["accounts"][ATTACKER]["privateKey"]
    tx = {"type": 2, "chainId": int(c.info["chainId"]), "nonce": nonce, "value": 0,
          "maxFeePerGas": 0, "maxPriorityFeePerGas": 0, **fields}
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


def _fresh_puts_commit_everywhere(c: Cluster, sender: int, nonce: int, timeout: float
                                  ) -> list[float]:
    """Send one put to each node in turn and wait for its receipt there; the latencies."""
    key = c.info["accounts"][sender]["privateKey"]
    latencies = []
    for i in range(c.size):
        tx = sign_put(key, int(c.info["chainId"]), nonce + i, b"after-%d-%d" % (sender, i))
        start = time.monotonic()
        out = _send(c, i, bytes.fromhex(tx.raw[2:]))
        assert out.get("result") == tx.hash, out
        wait_for(lambda i=i, h=tx.hash: c.rpc(i, "eth_getTransactionReceipt", [h]) is not None,
                 timeout, f"the put sent to {c.name(i)} commits", c.describe)
        latencies.append(time.monotonic() - start)
    return latencies


def test_oversized_initcode_and_gas_heavy_loops_do_not_stop_the_chain(c: Cluster) -> None:
    load = Load(c, senders=OPERATORS[:3], label=b"admission").start()
    try:
        load.wait_receipts(20, 120)
        # Finding 1: 50,000 bytes of initcode (EIP-3860 allows 49,152) is refused up front.
        out = _send(c, 0, _attack(c, 0, to=b"", gas=3_000_000, data=b"\x00" * 50_000))
        assert out["error"]["data"]["reason"] == "initcode_size", out
        # Finding 4: a 20M-gas loop is over the per-transaction cap.
        out = _send(c, 1, _attack(c, 0, to=b"", gas=20_000_000, data=LOOP_INITCODE))
        assert out["error"]["data"]["reason"] == "gas_limit", out
        # A loop at the cap is admitted; it costs at most its 3M gas or the proposer's time
        # budget (then it is cut off inside execution and dropped), never the chain.
        loops = [_attack(c, n, to=b"", gas=3_000_000, data=LOOP_INITCODE) for n in range(3)]
        for n, raw in enumerate(loops):
            out = _send(c, n % c.size, raw)
            assert "result" in out, out
        before = load.counts()[2]
        load.wait_receipts(before + 30, 120)
        latencies = _fresh_puts_commit_everywhere(c, OPERATORS[3], 0, timeout=60)
        print(f"put-to-receipt after the attack, per node: "
              f"{', '.join(f'{s:.2f}s' for s in latencies)}")
        heads = c.heads()
        assert all(h is not None for h in heads.values()), c.describe()
    finally:
        load.stop()
    for i in range(c.size):
        assert "Traceback" not in c.log_text(i), c.log_text(i)[-3000:]


def test_member_registered_after_genesis_sends_its_own_first_grant(c: Cluster) -> None:
    admin_member = next(m for m in c.info["members"] if m["role"] == "admin")
    bank = next(m for m in c.info["members"] if m["role"] == "financial")
    admin = Admin(Client(c.info["nodes"][0]["api"], admin_member["privateKey"]))
    newcomer = Account.create()
    code = make_code("91440300MA5FAKE01")
    enc = envelope.generate_enc_keypair("standard")
    admin.add_member(code, "enterprise", "新企业 Newcomer Co.", enc_key=enc.public,
                     account=newcomer.address)
    client = Client(c.info["nodes"][1]["api"], "0x" + bytes(newcomer.key).hex(),
                    enc_private_key="0x" + enc.private.hex())
    granted = Enterprise(client, code).grant(bank["id"], types=["basic"],
                                             purpose="first grant", max_reads=1,
                                             valid_for_s=3600)
    assert granted.get("grant_id"), granted

