"""Crash recovery: ``kill -9`` in the middle of a 2,000-transaction load, then restart.

Must hold (from the issue): every transaction whose receipt was returned before the kill is
still there with the same receipt, the node goes on accepting transactions, the database
opens cleanly. And, from the node's own invariant, every transaction hash it returned from
``eth_sendRawTransaction`` is journaled, so it commits after the restart.

"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from tests.conftest import LocalNetwork
from tests.consortium_helpers import batch, batched_results, sign_put, wait_for
from yilian.cli import launcher
from yilian.network_configs.local import LOCAL_CHAIN_ID, RECORD_STORE_ADDRESS

TOTAL = 2000
SENDERS = 8  # dev accounts 0..7, 250 transactions each
SEND_BATCH = 50
RECEIPT_BATCH = 500  # below the node's max JSON-RPC batch (1000)
# The sender never runs more than this many transactions ahead of the receipts seen, so
# when the kill comes (after at most 900 receipts) the load is provably still going.
MAX_IN_FLIGHT = 400
MIN_PENDING_AT_KILL = 100
GAP_SENDER = 8  # a dev account the load does not use
PUT_SELECTOR = keccak(b"put(bytes32,bytes32)")[:4]
WRITES_CALLDATA = "0x" + keccak(b"writes()")[:4].hex()
RECORD_STORE = to_checksum_address(RECORD_STORE_ADDRESS)

Json = dict[str, Any]


# -- JSON-RPC over httpx -----------------------------------------------------------------------


def rpc(client: httpx.Client, url: str, method: str, params: list[Any] | None = None) -> Any:
    resp = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                  "params": params or []})
    resp.raise_for_status()
    body = resp.json()
    assert "error" not in body, body
    return body["result"]


def wait_committed(client: httpx.Client, url: str, hashes: Iterable[str], timeout: float,
                   what: str) -> None:
    """Wait until every one of ``hashes`` has a receipt; each must have status 1."""
    missing = set(hashes)

    def all_committed() -> bool:
        todo = sorted(missing)
        found = batched_results(client, url, "eth_getTransactionReceipt", [[x] for x in todo])
        for tx_hash, receipt in zip(todo, found, strict=True):
            if receipt is not None:
                assert receipt["status"] == "0x1", receipt
                missing.discard(tx_hash)
        return not missing

    wait_for(all_committed, timeout, what)


def wait_dead(pid: int, timeout: float = 20.0) -> None:
    """Wait until ``pid`` is gone (reaping it if it is our child, as the launcher's is)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return
        except ChildProcessError:  # not our child: look at /proc instead
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                return
            if state in ("Z", "X"):
                return
        time.sleep(0.05)
    pytest.fail(f"process {pid} did not die")


# -- the load --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedTx:
    raw: str
    hash: str
    sender: str
    nonce: int


@pytest.fixture(scope="module")
def presigned() -> list[SignedTx]:
    """2,000 RecordStore puts from 8 dev accounts, interleaved, nonces 0..249 each.

    Valid on every fresh local network (same genesis, same accounts, nonces from 0)."""
    from yilian.network_configs.local import dev_accounts

    accounts = dev_accounts()[:SENDERS]
    out = []
    for i in range(TOTAL):
        acct = accounts[i % SENDERS]
        nonce = i // SENDERS
        key = keccak(b"crash-key-%d" % i)
        value = keccak(b"crash-value-%d" % i)
        signed = Account.sign_transaction({
            "type": 2, "chainId": LOCAL_CHAIN_ID, "nonce": nonce, "to": RECORD_STORE,
            "value": 0, "gas": 100_000, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
            "data": PUT_SELECTOR + key + value,
        }, acct.private_key)
        out.append(SignedTx("0x" + bytes(signed.raw_transaction).hex(),
                            "0x" + bytes(signed.hash).hex(), acct.address, nonce))
    return out


@dataclass
class Load:
    """Sends the transactions in batches while polling receipts, until told to stop."""

    url: str
    txs: list[SignedTx]
    accepted: list[str] = field(default_factory=list)  # hashes eth_sendRawTransaction returned
    rejected: list[Json] = field(default_factory=list)
    receipts: dict[str, Json] = field(default_factory=dict)
    sent_batches: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[BaseException] = field(default_factory=list)

    def receipt_count(self) -> int:
        with self.lock:
            return len(self.receipts)

    def send_loop(self) -> None:
        with httpx.Client(timeout=30) as client:
            for i in range(0, len(self.txs), SEND_BATCH):
                while self.receipt_count() + MAX_IN_FLIGHT < i + SEND_BATCH:
                    if self.stop.wait(0.01):
                        return
                if self.stop.is_set():
                    return
                chunk = self.txs[i:i + SEND_BATCH]
                try:
                    responses = batch(client, self.url, [("eth_sendRawTransaction", [t.raw])
                                                         for t in chunk])
                except httpx.HTTPError:  # the node was killed under us
                    return
                with self.lock:
                    self.sent_batches += 1
                    for t, r in zip(chunk, responses, strict=True):
                        if "result" in r:
                            assert r["result"] == t.hash
                            self.accepted.append(t.hash)
                        else:
                            self.rejected.append(r)

    def receipt_loop(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                with self.lock:
                    waiting = [h for h in self.accepted if h not in self.receipts]
                waiting = waiting[:RECEIPT_BATCH]
                if not waiting:
                    time.sleep(0.02)
                    continue
                try:
                    responses = batch(client, self.url, [("eth_getTransactionReceipt", [h])
                                                         for h in waiting])
                except httpx.HTTPError:
                    return
                with self.lock:
                    for h, r in zip(waiting, responses, strict=True):
                        if r.get("result") is not None:
                            self.receipts[h] = r["result"]
                time.sleep(0.02)

    def run(self, target: Callable[[], None]) -> threading.Thread:
        def guarded() -> None:
            try:
                target()
            except BaseException as exc:  # surfaced by the test, not lost in the thread
                self.errors.append(exc)
                self.stop.set()

        thread = threading.Thread(target=guarded, daemon=True)
        thread.start()
        return thread


def check_chain(client: httpx.Client, url: str) -> int:
    """Every block 0..head exists and links to its parent; returns the head number."""
    head = int(rpc(client, url, "eth_blockNumber"), 16)
    blocks = batched_results(client, url, "eth_getBlockByNumber",
                             [[hex(n), False] for n in range(head + 1)])
    assert all(b is not None for b in blocks)
    for n, block in enumerate(blocks):
        assert int(block["number"], 16) == n
        if n:
            assert block["parentHash"] == blocks[n - 1]["hash"], f"block {n} does not link"
    return head


def health(rpc_url: str) -> Json:
    resp = httpx.get(rpc_url.rsplit("/rpc", 1)[0] + "/healthz", timeout=10)
    resp.raise_for_status()
    data: Json = resp.json()
    return data


def node_log(net: LocalNetwork) -> Path:
    return net.home / "node.log"


# -- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kill_after", [200, 900])
def test_kill_9_mid_load_then_restart(fresh_network: LocalNetwork, presigned: list[SignedTx],
                                      kill_after: int) -> None:
    net = fresh_network
    url = net.rpc
    load = Load(url, presigned)
    sender = load.run(load.send_loop)
    poller = load.run(load.receipt_loop)
    # Kill once ``kill_after`` receipts are back while the load is still going and at
    # least MIN_PENDING_AT_KILL accepted transactions have no receipt yet (so some of them
    # are most likely still in the mempool, or in the block being built, when it dies).
    deadline = time.monotonic() + 90
    while True:
        with load.lock:
            n_receipts, n_accepted = len(load.receipts), len(load.accepted)
        if (n_receipts >= kill_after and n_accepted - n_receipts >= MIN_PENDING_AT_KILL
                and n_accepted < TOTAL):
            break
        assert not load.errors, load.errors
        assert n_accepted < TOTAL, "the whole load was accepted before the kill moment"
        assert time.monotonic() < deadline, (n_receipts, n_accepted)
        time.sleep(0.002)
    # One transaction that cannot commit before the kill (its sender's nonce 0 is not sent
    # yet): it must survive the kill in the mempool journal.
    gapped = sign_put(net.key(GAP_SENDER), LOCAL_CHAIN_ID, 1, b"gap")
    gap_sender = net.address(GAP_SENDER)
    with httpx.Client(timeout=30) as client:
        assert rpc(client, url, "eth_sendRawTransaction", [gapped.raw]) == gapped.hash

    pid = net.pid
    os.kill(pid, signal.SIGKILL)
    wait_dead(pid)
    load.stop.set()
    sender.join(30)
    poller.join(30)
    assert not sender.is_alive() and not poller.is_alive()
    assert not load.errors, load.errors

    with load.lock:
        receipts_before = dict(load.receipts)
        accepted = list(load.accepted)
        rejected = list(load.rejected)
    assert rejected == []
    assert len(receipts_before) >= kill_after
    assert len(accepted) < TOTAL, "the kill must land while the load is still going"
    assert len(accepted) - len(receipts_before) >= MIN_PENDING_AT_KILL
    assert set(receipts_before) <= set(accepted)
    max_block_seen = max(int(r["blockNumber"], 16) for r in receipts_before.values())
    print(f"kill after {len(receipts_before)} receipts, {len(accepted)} accepted, "
          f"head >= {max_block_seen}")

    log_size = node_log(net).stat().st_size
    net.restart()  # raises if the database does not open or the node does not answer
    assert net.pid != pid
    h = health(url)
    assert h["status"] == "ok" and h["lastBlockError"] is None

    with httpx.Client(timeout=60) as client:
        # 1. every receipt returned before the kill is there, identical
        hashes = list(receipts_before)
        again = batched_results(client, url, "eth_getTransactionReceipt", [[x] for x in hashes])
        for tx_hash, receipt in zip(hashes, again, strict=True):
            assert receipt == receipts_before[tx_hash], tx_hash
        # 2. the head did not go back
        assert int(rpc(client, url, "eth_blockNumber"), 16) >= max_block_seen

        # 3. every transaction the node accepted before the kill commits after the restart
        wait_committed(client, url, set(accepted) - set(receipts_before), 60,
                       "the journaled (accepted before the kill) transactions to commit")

        # 4. the node goes on accepting transactions: send the rest of the load. Ones that
        # were in the batch in flight at the kill may already be known (journaled); nothing
        # else may be refused.
        rest = [t for t in presigned if t.hash not in set(accepted)]
        assert rest
        for i in range(0, len(rest), SEND_BATCH):
            chunk = rest[i:i + SEND_BATCH]
            responses = batch(client, url, [("eth_sendRawTransaction", [t.raw]) for t in chunk])
            for t, r in zip(chunk, responses, strict=True):
                if "error" in r:
                    assert (r["error"].get("data") or {}).get("reason") == "known", r
                else:
                    assert r["result"] == t.hash
        wait_committed(client, url, [t.hash for t in presigned], 90,
                       "the whole 2,000-transaction load to commit")

        # each put ran exactly once: the contract's write counter and every sender's nonce
        # (checked before the gapped transaction can commit: it has not been filled yet)
        writes = rpc(client, url, "eth_call", [{"to": RECORD_STORE, "data": WRITES_CALLDATA},
                                               "latest"])
        assert int(writes, 16) == TOTAL
        senders = sorted({t.sender for t in presigned})
        nonces = batched_results(client, url, "eth_getTransactionCount",
                                 [[s, "latest"] for s in senders])
        assert [int(n, 16) for n in nonces] == [TOTAL // SENDERS] * SENDERS

        # ... and a brand-new transaction is accepted and commits too
        extra = sign_put(net.key(0), LOCAL_CHAIN_ID, TOTAL // SENDERS, b"after-restart")
        assert rpc(client, url, "eth_sendRawTransaction", [extra.raw]) == extra.hash
        wait_for(lambda: rpc(client, url, "eth_getTransactionReceipt", [extra.hash])
                 is not None, 30, "a new transaction to commit")

        # the transaction stuck behind a nonce gap came back from the journal, still pending;
        # filling the gap commits both
        pending_gapped = rpc(client, url, "eth_getTransactionByHash", [gapped.hash])
        assert pending_gapped is not None, "an accepted transaction was lost by the kill"
        assert pending_gapped["blockHash"] is None
        assert rpc(client, url, "eth_getTransactionCount", [gap_sender, "pending"]) == "0x0"
        filler = sign_put(net.key(GAP_SENDER), LOCAL_CHAIN_ID, 0, b"gap-filler")
        assert rpc(client, url, "eth_sendRawTransaction", [filler.raw]) == filler.hash
        wait_for(lambda: rpc(client, url, "eth_getTransactionReceipt", [gapped.hash])
                 is not None, 30, "the journaled gapped transaction to commit")
        assert rpc(client, url, "eth_getTransactionCount", [gap_sender, "latest"]) == "0x2"

        # 5. the chain is whole: every block 0..head links to its parent, and the blocks
        # named by the receipts from before the kill are still the canonical ones
        head = check_chain(client, url)
        assert head >= max_block_seen
        blocks = {r["blockNumber"]: r["blockHash"] for r in receipts_before.values()}
        canonical = batched_results(client, url, "eth_getBlockByNumber",
                                    [[n, False] for n in sorted(blocks)])
        assert [b["hash"] for b in canonical] == [blocks[n] for n in sorted(blocks)]

    # the database opened cleanly: nothing went wrong in the restarted node's log
    restarted_log = node_log(net).read_bytes()[log_size:].decode(errors="replace")
    assert "Traceback" not in restarted_log, restarted_log[-3000:]
    assert "corrupt" not in restarted_log.lower()
    assert health(url)["lastBlockError"] is None


def test_sigterm_then_restart_keeps_head_and_state(fresh_network: LocalNetwork,
                                                   presigned: list[SignedTx]) -> None:
    net = fresh_network
    url = net.rpc
    with httpx.Client(timeout=60) as client:
        first = presigned[:200]
        batched_results(client, url, "eth_sendRawTransaction", [[t.raw] for t in first],
                        size=SEND_BATCH)
        wait_for(lambda: all(r is not None for r in batched_results(
            client, url, "eth_getTransactionReceipt", [[t.hash] for t in first])),
                 60, "200 transactions to commit")
        before = health(url)["head"]
        receipts = batched_results(client, url, "eth_getTransactionReceipt",
                                   [[t.hash] for t in first])
        writes = rpc(client, url, "eth_call", [{"to": RECORD_STORE, "data": WRITES_CALLDATA},
                                               "latest"])
    assert int(writes, 16) == 200

    pid = net.pid
    net.stop()  # SIGTERM, clean shutdown
    wait_dead(pid)
    net.restart()
    after = health(url)
    assert after["status"] == "ok"
    assert after["head"] == before  # number, hash, state root and timestamp
    with httpx.Client(timeout=60) as client:
        assert batched_results(client, url, "eth_getTransactionReceipt",
                               [[t.hash] for t in first]) == receipts
        assert rpc(client, url, "eth_call", [{"to": RECORD_STORE, "data": WRITES_CALLDATA},
                                             "latest"]) == writes
        block = rpc(client, url, "eth_getBlockByNumber", ["latest", False])
        assert block["stateRoot"] == before["stateRoot"]
        assert block["hash"] == before["hash"]
        # and it goes on: the next transactions commit on top of the same head
        more = presigned[200:240]
        batched_results(client, url, "eth_sendRawTransaction", [[t.raw] for t in more])
        wait_for(lambda: all(r is not None for r in batched_results(
            client, url, "eth_getTransactionReceipt", [[t.hash] for t in more])),
                 60, "transactions after the restart to commit")
        assert check_chain(client, url) > before["number"]


def test_launcher_start_kill_restart_cycles(tmp_path: Path) -> None:
    """``yilian up`` (start and restart after ``kill -9``) works every time, several times in a
    row. It guards against a start-up race the launcher had: a freshly spawned node, still in
    ``execve``, has an empty ``/proc/<pid>/cmdline`` and was judged dead ("node-1 exited
    during start-up" with an empty log)."""
    for i in range(6):
        data_dir = tmp_path / f"net{i}"
        try:
            net = LocalNetwork(data_dir)
            pid = net.pid
            os.kill(pid, signal.SIGKILL)
            wait_dead(pid)
            net.restart()
            assert net.pid != pid
            assert health(net.rpc)["status"] == "ok"
        finally:
            if (data_dir / launcher.NETWORK_FILE).exists():
                launcher.down(data_dir)
