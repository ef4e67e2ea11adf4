"""Calls that wait for a commit (issue 8, finding 5), in process: one real single-validator
node with the domain contracts and many enterprise members, driven concurrently through
the ASGI app on one event loop (as uvicorn runs it, with anyio's default pool of 40
worker threads for synchronous routes).

A stalled chain is modelled by stopping the node's block producer: transactions are
admitted but no block is made until it runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from tests.domain_node import domain_node, new_center
from yilian.api import waiting
from yilian.api.app import create_app
from yilian.contracts.abi import contract_abi
from yilian.contracts.addresses import (
    GRANTS_ADDRESS,
    ROLE_ADMIN,
    ROLE_ENTERPRISE,
)
from yilian.network_configs.domain import MemberSeed
from yilian.network_configs.local import LOCAL_CHAIN_ID, dev_accounts
from yilian.node.service import Node
from yilian.protocol.credit_code import make_code, to_bytes32

pytestmark = pytest.mark.timeout(300)

MEMBERS = 50  # enterprises, each with its own account: more than the 40 worker threads
ACCOUNTS = dev_accounts(MEMBERS)
CODES = [make_code(f"91440300{i:09d}") for i in range(MEMBERS)]
GRANTEE = CODES[-1]


@dataclass
class Env:
    node: Node
    app: Any

    def client(self, ip: str = "10.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 4321))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 timeout=120)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home: Path = tmp_path_factory.mktemp("waiting-api")
    center, _ = new_center(home)
    seeds = [center,
             MemberSeed(id=make_code("92440300000000000"), role=ROLE_ADMIN, name="admin",
                        enc_key=center.enc_key, endpoint="", account=Account.create().address)]
    seeds += [MemberSeed(id=code, role=ROLE_ENTERPRISE, name=f"企业 {i}",
                         enc_key=center.enc_key, endpoint="", account=ACCOUNTS[i].address)
              for i, code in enumerate(CODES)]
    node = domain_node(home, ACCOUNTS, seeds, [center.account],
                       block_interval_ms=100)  # writes wait for their block
    try:
        node.start()
        yield Env(node, create_app(node))
    finally:
        node.stop()


@contextlib.contextmanager
def producer_stopped(node: Node) -> Iterator[None]:
    """No block is made inside the block: admitted transactions wait (a stalled chain)."""
    assert node.producer is not None
    node.producer.stop()
    try:
        yield
    finally:
        node.producer.start()


def sign_grant(member: int, nonce: int, purpose: str) -> str:
    data = contract_abi("Grants").encode_call(
        "grant", to_bytes32(GRANTEE), to_bytes32(CODES[member]), 1 << 1, b"\x00" * 32,
        purpose, int(time.time()) + 3600, 3)
    signed = Account.sign_transaction({
        "type": 2, "chainId": LOCAL_CHAIN_ID, "nonce": nonce,
        "to": to_checksum_address(GRANTS_ADDRESS), "value": 0, "gas": 2_000_000, "data": data,
        "maxFeePerGas": 0, "maxPriorityFeePerGas": 0}, ACCOUNTS[member].private_key)
    return "0x" + bytes(signed.raw_transaction).hex()


def tx_hash_of(raw: str) -> bytes:
    from eth_hash.auto import keccak
    return keccak(bytes.fromhex(raw[2:]))


def next_nonce(env: Env, member: int) -> int:
    return env.node.mempool.pending_nonce(bytes.fromhex(ACCOUNTS[member].address[2:]))


async def until(predicate: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def health_and_rpc(http: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
    health = await http.get("/healthz")
    rpc = await http.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber",
                                        "params": []})
    return health, rpc


def test_many_waiting_calls_hold_no_thread_and_health_and_rpc_answer_meanwhile(
        env: Env) -> None:
    """45 grants (more than the 40 worker threads) wait for a chain that makes no block;
    /healthz and eth_blockNumber answer while every one of them is still waiting, and
    each grant is answered with its committed grant once blocks are made again."""
    count = 45
    raws = [sign_grant(i, next_nonce(env, i), f"waiting {i}") for i in range(count)]
    hashes = [tx_hash_of(r) for r in raws]

    async def scenario() -> tuple[list[httpx.Response], Any, Any, list[bool]]:
        # one client address per ten callers, so no per-address bound is involved
        clients = [env.client(f"10.1.0.{i // 10}") for i in range(count)]
        tasks = [asyncio.ensure_future(c.post("/v1/grants", json={"raw_transaction": r}))
                 for c, r in zip(clients, raws, strict=True)]
        with producer_stopped(env.node):
            await until(lambda: all(h in env.node.mempool for h in hashes),
                        "every grant to be admitted (the calls then wait)")
            async with env.client("10.2.0.1") as http:
                health, rpc = await health_and_rpc(http)
            done_meanwhile = [t.done() for t in tasks]
        answers = list(await asyncio.gather(*tasks))
        for c in clients:
            await c.aclose()
        return answers, health, rpc, done_meanwhile

    answers, health, rpc, done_meanwhile = asyncio.run(scenario())
    assert health.status_code == 200 and rpc.status_code == 200, (health.text, rpc.text)
    assert not any(done_meanwhile), (
        f"{sum(done_meanwhile)} of {count} waiting grants had already been answered when "
        "/healthz and eth_blockNumber answered: those queued behind the waiting calls")
    assert [a.status_code for a in answers] == [200] * count, [a.text for a in answers[:3]]
    grant_ids = {a.json()["grant_id"] for a in answers}
    assert len(grant_ids) == count
    assert {a.json()["status"] for a in answers} == {"committed"}
    assert len(env.node.commit_waiters) == 0


def test_a_nonce_gap_grant_reposted_many_times_is_answered_at_once(env: Env) -> None:
    """The issue's attack: one transaction that cannot execute (a nonce gap), posted 45
    times at once. Each post is answered at once as queued; none waits for a commit."""
    member = 0
    gap = next_nonce(env, member) + 1
    raw = sign_grant(member, gap, "gap")

    async def scenario() -> tuple[list[httpx.Response], Any, Any]:
        async with env.client("10.3.0.1") as http:
            posts = await asyncio.gather(*[http.post("/v1/grants", json={"raw_transaction": raw})
                                           for _ in range(45)])
            health, rpc = await health_and_rpc(http)
        return list(posts), health, rpc

    posts, health, rpc = asyncio.run(scenario())
    assert health.status_code == 200 and rpc.status_code == 200
    assert {p.status_code for p in posts} == {202}, {p.text for p in posts}
    body = posts[0].json()
    assert body["status"] == "queued" and body["reason"] == "nonce_gap"
    assert body["tx_hash"] == "0x" + tx_hash_of(raw).hex()
    assert f"nonce {gap - 1}" in body["message"]
    assert len(env.node.commit_waiters) == 0
    # once the gap is filled both commit; reposting the queued one then answers its grant
    fill = sign_grant(member, gap - 1, "fill")

    async def fill_and_repost() -> tuple[httpx.Response, httpx.Response]:
        async with env.client("10.3.0.1") as http:
            first = await http.post("/v1/grants", json={"raw_transaction": fill})
            await until(lambda: env.node.core.is_committed(tx_hash_of(raw)),
                        "the queued grant to commit")
            again = await http.post("/v1/grants", json={"raw_transaction": raw})
        return first, again

    first, again = asyncio.run(fill_and_repost())
    assert first.status_code == 200, first.text
    assert again.status_code == 200 and again.json()["purpose"] == "gap", again.text


def test_a_pending_grant_reposted_is_answered_with_its_status_and_commits_once(
        env: Env) -> None:
    member = 1
    raw = sign_grant(member, next_nonce(env, member), "repost")
    tx_hash = "0x" + tx_hash_of(raw).hex()

    async def scenario() -> tuple[list[httpx.Response], httpx.Response]:
        async with env.client("10.4.0.1") as http:
            with producer_stopped(env.node):
                first = asyncio.ensure_future(
                    http.post("/v1/grants", json={"raw_transaction": raw}))
                await until(lambda: tx_hash_of(raw) in env.node.mempool, "admission")
                reposts = await asyncio.gather(*[
                    http.post("/v1/grants", json={"raw_transaction": raw})
                    for _ in range(20)])
                assert not first.done()
            return list(reposts), await first

    reposts, first = asyncio.run(scenario())
    assert {r.status_code for r in reposts} == {202}
    assert {(r.json()["status"], r.json()["tx_hash"]) for r in reposts} == {
        ("pending", tx_hash)}
    assert first.status_code == 200, first.text

    async def repost_committed() -> httpx.Response:
        async with env.client("10.4.0.1") as http:
            return await http.post("/v1/grants", json={"raw_transaction": raw})

    again = asyncio.run(repost_committed())
    assert again.status_code == 200, again.text
    assert again.json()["grant_id"] == first.json()["grant_id"]
    assert again.json()["tx_hash"] == tx_hash
    assert again.json()["block_number"] == first.json()["block_number"]


def test_the_per_account_bound_refuses_to_wait_with_429_naming_the_kept_tx(env: Env) -> None:
    member = 2
    base = next_nonce(env, member)
    raws = [sign_grant(member, base + i, f"bound {i}") for i in range(waiting.PER_ACCOUNT + 1)]

    async def scenario() -> tuple[list[httpx.Response], httpx.Response]:
        async with env.client("10.5.0.1") as http:
            with producer_stopped(env.node):
                tasks = []
                for raw in raws[:-1]:  # one at a time, so none is behind a nonce gap
                    tasks.append(asyncio.ensure_future(
                        http.post("/v1/grants", json={"raw_transaction": raw})))
                    await until(lambda r=raw: tx_hash_of(r) in env.node.mempool, "admission")
                over = await http.post("/v1/grants", json={"raw_transaction": raws[-1]})
            return list(await asyncio.gather(*tasks)), over

    waited, over = asyncio.run(scenario())
    assert over.status_code == 429, over.text
    assert over.json()["error"]["reason"] == "too_many_waiting"
    assert over.json()["error"]["limit"] == waiting.PER_ACCOUNT
    assert over.json()["error"]["tx_hash"] == "0x" + tx_hash_of(raws[-1]).hex()
    assert over.json()["error"]["status"] == "pending"
    assert [w.status_code for w in waited] == [200] * waiting.PER_ACCOUNT
    assert env.node.core.is_committed(tx_hash_of(raws[-1]))  # kept, and committed


def test_the_wait_budget_counts_per_account_per_address_and_in_total() -> None:
    budget = waiting.WaitBudget(per_account=2, per_ip=3, total=4)
    a, b, c = b"\x0a" * 20, b"\x0b" * 20, b"\x0c" * 20
    with contextlib.ExitStack() as stack:
        stack.enter_context(budget.slot(a, "1.1.1.1"))
        stack.enter_context(budget.slot(a, "1.1.1.1"))
        with pytest.raises(waiting.ApiError) as per_account:
            stack.enter_context(budget.slot(a, "2.2.2.2"))
        assert (per_account.value.status, per_account.value.reason) == (429, "too_many_waiting")
        stack.enter_context(budget.slot(b, "1.1.1.1"))
        with pytest.raises(waiting.ApiError) as per_ip:
            stack.enter_context(budget.slot(c, "1.1.1.1"))
        assert per_ip.value.status == 429
        stack.enter_context(budget.slot(c, "3.3.3.3"))
        with pytest.raises(waiting.ApiError) as total:
            stack.enter_context(budget.slot(b"\x0d" * 20, "4.4.4.4"))
        assert (total.value.status, total.value.reason) == (503, "waiting_full")
        assert budget.open == 4
    assert budget.open == 0
    with budget.slot(a, "1.1.1.1"):  # released slots are free again
        assert budget.open == 1


def test_health_and_readiness_report_a_stall_while_transactions_wait(env: Env) -> None:
    """No commit for longer than the bound while an executable transaction waits: /healthz
    says stalled (still 200), /readyz is 503, and a domain call fails at once naming the
    transaction it kept; once blocks are made again both commit and /readyz is 200."""
    member = 3
    raw = sign_grant(member, next_nonce(env, member), "stall")
    other = sign_grant(member + 1, next_nonce(env, member + 1), "refused while stalled")
    liveness = env.node.liveness

    async def stalled() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async with env.client("10.6.0.1") as http:
            with producer_stopped(env.node):
                env.node.submit(bytes.fromhex(raw[2:]))
                liveness.check()  # the first observation of the waiting transaction
                old = liveness.stall_after_s
                liveness.stall_after_s = 0.2
                try:
                    await asyncio.sleep(0.3)
                    health = await http.get("/healthz")
                    ready = await http.get("/readyz")
                    refused = await http.post("/v1/grants", json={"raw_transaction": other})
                finally:
                    liveness.stall_after_s = old
            return health, ready, refused

    health, ready, refused = asyncio.run(stalled())
    assert health.status_code == 200
    assert health.json()["status"] == "stalled"
    assert [r["reason"] for r in health.json()["chain"]["reasons"]] == ["no_commit"]
    assert ready.status_code == 503 and ready.json()["chain"]["stalled"] is True
    assert refused.status_code == 503, refused.text
    err = refused.json()["error"]
    assert err["reason"] == "no_commit" and err["status"] == "pending"
    assert err["tx_hash"] == "0x" + tx_hash_of(other).hex() and "kept" in err["message"]

    async def recovered() -> httpx.Response:
        await until(lambda: all(env.node.core.is_committed(tx_hash_of(r)) for r in (raw, other)),
                    "both grants to commit once blocks are made again")
        async with env.client("10.6.0.1") as http:
            return await http.get("/readyz")

    ready_again = asyncio.run(recovered())
    assert ready_again.status_code == 200, ready_again.text
