"""Load generator: committed tx/s and commit latency of a node, against in-process py-evm.

``python -m yilian.bench.load`` pre-signs N ``RecordStore.put(key, data)`` calls (type-2,
zero fees, unique keys) with eth-account, sends them to a node as JSON-RPC batches of
``eth_sendRawTransaction`` and watches the chain for the blocks that commit them. In the
same run it measures the baseline: py-evm alone building blocks from the *same* raw
transactions (decoding and sender recovery included) over an in-memory database, with
the same genesis and the same block-building steps as the node. It prints both rates and
their ratio, then (``--load-fraction``) offers a rate-limited load at a fraction of the
baseline and reports the commit latency at that load.

Definitions:

* send time of a tx: when the HTTP request carrying it first started;
* commit time: when the poller (``eth_blockNumber`` every ``--poll-interval``) first saw a
  block that includes it;
* latency = commit time - send time;
* committed tx/s = committed txs / (last commit time - first send time).

By default the bench starts a fresh single-validator network in a temporary directory
(``yilian.node.launcher.up``) and always stops it afterwards; ``--rpc URL`` targets a
running node instead. Exit status: 0 when every accepted transaction committed with a
successful receipt (and, with ``--check``, the goals were met), 1 otherwise, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, cast

import httpx
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth.chains.base import Chain
from eth.db.atomic import AtomicDB
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_canonical_address, to_checksum_address

from yilian.contracts.artifacts import load as load_artifact
from yilian.network_configs.local import (
    RECORD_STORE_ADDRESS,
    dev_accounts,
    local_genesis,
)
from yilian.node import launcher
from yilian.node.chain import BlockEnv, ChainCore
from yilian.node.genesis import Genesis, YilianVM, chain_class, parse_genesis
from yilian.node.storage import Store

GAS_PER_TX = 100_000
MAX_SENDERS = 10  # the local genesis authorises ten development accounts
# Admission refusals that clear up by themselves once blocks commit: retry, do not fail.
RETRY_REASONS = frozenset({"nonce_too_high", "mempool_full", "sender_limit"})
RETRY_DELAY = 0.25  # seconds
MAX_ATTEMPTS = 120  # ~30 s of retrying per transaction before giving up
TRANSPORT_ATTEMPTS = 3


class BenchError(Exception):
    """The benchmark cannot run or its result is invalid; the message says why."""


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# -- JSON-RPC client ---------------------------------------------------------------------


class RpcFailure(BenchError):
    """A JSON-RPC call failed (transport error or an error object)."""


class Rpc:
    """A small async JSON-RPC client over one httpx connection pool."""

    def __init__(self, url: str, *, connections: int, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=connections,
                                max_keepalive_connections=connections),
            headers={"content-type": "application/json"},
            transport=transport,
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def post(self, payload: Any) -> Any:
        body = json.dumps(payload, separators=(",", ":"))
        resp = await self.client.post(self.url, content=body)
        if resp.status_code == 204:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise RpcFailure(f"HTTP {resp.status_code} from {self.url}: not JSON "
                             f"({resp.text[:200]!r})") from exc

    async def call(self, method: str, params: list[Any] | None = None) -> Any:
        try:
            out = await self.post({"jsonrpc": "2.0", "id": 1, "method": method,
                                   "params": params or []})
        except httpx.HTTPError as exc:
            raise RpcFailure(f"{method} to {self.url} failed: {type(exc).__name__} {exc}"
                             ) from exc
        if not isinstance(out, dict):
            raise RpcFailure(f"{method}: unexpected response {out!r:.200}")
        if "error" in out:
            raise RpcFailure(f"{method}: {out['error']}")
        return out.get("result")

    async def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Results of ``calls`` in order; raises RpcFailure if any of them failed."""
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                   for i, (m, p) in enumerate(calls)]
        try:
            out = await self.post(payload)
        except httpx.HTTPError as exc:
            raise RpcFailure(f"batch to {self.url} failed: {type(exc).__name__} {exc}") from exc
        if not isinstance(out, list):
            raise RpcFailure(f"batch: unexpected response {out!r:.300}")
        by_id = {r.get("id"): r for r in out if isinstance(r, dict)}
        results = []
        for i, (method, _) in enumerate(calls):
            r = by_id.get(i)
            if r is None:
                raise RpcFailure(f"batch: no response to request {i} ({method})")
            if "error" in r:
                raise RpcFailure(f"{method}: {r['error']}")
            results.append(r.get("result"))
        return results


# -- transactions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sender:
    address: str
    private_key: str


@dataclass(frozen=True)
class PreSigned:
    raw: bytes
    raw_hex: str
    hash: str  # 0x-prefixed lowercase hex
    sender: str
    nonce: int


def put_selector() -> bytes:
    """The 4-byte selector of ``RecordStore.put(bytes32,bytes32)``, from the shipped ABI."""
    abi = load_artifact("RecordStore").abi
    for entry in abi:
        if entry.get("type") == "function" and entry.get("name") == "put":
            types = [i["type"] for i in entry.get("inputs", [])]
            if types != ["bytes32", "bytes32"]:
                raise BenchError(f"RecordStore.put has inputs {types}; expected two bytes32")
            return keccak(f"put({','.join(types)})".encode())[:4]
    raise BenchError("the RecordStore ABI has no put function")


def presign(senders: Sequence[Sender], start_nonces: Sequence[int], count: int, *,
            chain_id: int, tag: bytes) -> list[PreSigned]:
    """``count`` signed ``put`` calls, senders interleaved (tx i from sender i % len)."""
    selector = put_selector()
    to = to_checksum_address(RECORD_STORE_ADDRESS)
    out: list[PreSigned] = []
    for i in range(count):
        s = i % len(senders)
        nonce = start_nonces[s] + i // len(senders)
        key = keccak(tag + b"/key/" + i.to_bytes(8, "big"))
        data = keccak(tag + b"/data/" + i.to_bytes(8, "big"))
        signed = Account.sign_transaction({
            "type": 2,
            "chainId": chain_id,
            "nonce": nonce,
            "to": to,
            "value": 0,
            "gas": GAS_PER_TX,
            "maxFeePerGas": 0,
            "maxPriorityFeePerGas": 0,
            "data": selector + abi_encode(["bytes32", "bytes32"], [key, data]),
            "accessList": [],
        }, senders[s].private_key)
        raw = bytes(signed.raw_transaction)
        out.append(PreSigned(raw=raw, raw_hex="0x" + raw.hex(),
                             hash="0x" + bytes(signed.hash).hex(),
                             sender=senders[s].address, nonce=nonce))
    return out


# -- statistics --------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0, 100] of an ascending sequence."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class Latency:
    p50: float = math.nan
    p90: float = math.nan
    p99: float = math.nan
    max: float = math.nan
    mean: float = math.nan

    @classmethod
    def of(cls, values: Sequence[float]) -> Latency:
        if not values:
            return cls()
        v = sorted(values)
        return cls(p50=percentile(v, 50), p90=percentile(v, 90), p99=percentile(v, 99),
                   max=v[-1], mean=sum(v) / len(v))


@dataclass
class CpuUsage:
    """Who used the CPUs during a measured interval (seconds of CPU time)."""

    wall: float
    bench: float  # this process (load generator, or the baseline itself)
    node: float | None  # the node process(es), when their pids are known (same machine)
    others: float | None  # every other process on the machine (from /proc/stat)
    cpus: int
    per_node: list[float | None] | None = None  # each node process, with several nodes

    @property
    def others_cores(self) -> float | None:
        return None if self.others is None or not self.wall else self.others / self.wall


def _proc_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system, all threads) used so far by process ``pid``."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _machine_busy() -> float | None:
    """CPU seconds all processes of the machine have used since boot (/proc/stat)."""
    try:
        with open("/proc/stat") as f:
            cols = [int(c) for c in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (cols + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Measures wall time and CPU time of this process, the node(s) and everybody else.

    ``node_pid`` is one node's pid or, for a network of several node processes on this
    machine, a sequence of pids: ``node`` is then their total and ``per_node`` each one's.
    """

    def __init__(self, node_pid: int | Sequence[int] | None) -> None:
        self.many = not (node_pid is None or isinstance(node_pid, int))
        self.node_pids: list[int | None] = (
            [node_pid] if node_pid is None or isinstance(node_pid, int) else list(node_pid))
        self.wall = time.perf_counter()
        self.bench = time.process_time()
        self.nodes = [_proc_cpu(pid) for pid in self.node_pids]
        self.busy = _machine_busy()

    def stop(self) -> CpuUsage:
        wall = time.perf_counter() - self.wall
        bench = time.process_time() - self.bench
        nodes_now, busy_now = [_proc_cpu(pid) for pid in self.node_pids], _machine_busy()
        per_node = [None if now is None or then is None else now - then
                    for now, then in zip(nodes_now, self.nodes, strict=True)]
        known = [c for c in per_node if c is not None]
        node = sum(known) if known and len(known) == len(per_node) else None
        others = None
        if busy_now is not None and self.busy is not None:
            others = max(0.0, busy_now - self.busy - bench - sum(known))
        return CpuUsage(wall=wall, bench=bench, node=node, others=others,
                        cpus=os.cpu_count() or 1, per_node=per_node if self.many else None)


@dataclass
class ErrorCount:
    count: int
    example: str


@dataclass
class BlockSeen:
    number: int
    txs: int  # all transactions in the block
    ours: int  # transactions of this phase in the block
    seen: float  # seconds since the phase's first send


@dataclass
class PhaseResult:
    label: str
    txs: int
    offered_rate: float | None  # tx/s for a rate-limited phase, None at saturation
    batch: int
    concurrency: int
    accepted: int = 0
    committed: int = 0
    rejected: int = 0
    retries: int = 0
    errors: dict[str, ErrorCount] = field(default_factory=dict)
    send_seconds: float = 0.0  # first send .. last send response
    commit_seconds: float = 0.0  # first send .. last commit seen
    tps: float = 0.0  # committed / commit_seconds
    send_tps: float = 0.0  # accepted / send_seconds (admission rate)
    max_send_lag: float = 0.0  # rate-limited phases: worst start delay behind schedule
    latency: Latency = field(default_factory=Latency)
    blocks: list[BlockSeen] = field(default_factory=list)
    timed_out: str | None = None
    receipts_checked: int = 0
    receipts_ok: int = 0
    receipt_problems: dict[str, ErrorCount] = field(default_factory=dict)
    cpu: CpuUsage | None = None  # sending and committing, receipt checks excluded
    start_block: int | None = None  # the head when the phase started
    send_urls: int = 1  # RPC endpoints the batches went to, round-robin

    @property
    def blocks_used(self) -> int:
        return sum(1 for b in self.blocks if b.ours)

    @property
    def mean_block_interval(self) -> float:
        used = [b for b in self.blocks if b.ours]
        if len(used) < 2:
            return math.nan
        return (used[-1].seen - used[0].seen) / (len(used) - 1)

    @property
    def tx_per_block(self) -> float:
        return self.committed / self.blocks_used if self.blocks_used else math.nan

    @property
    def ok(self) -> bool:
        return (self.timed_out is None and self.rejected == 0 and self.committed == self.txs
                and self.receipts_ok == self.receipts_checked)


def _count(errors: dict[str, ErrorCount], key: str, message: str, n: int = 1) -> None:
    entry = errors.get(key)
    if entry is None:
        errors[key] = ErrorCount(n, message)
    else:
        entry.count += n


# -- one load phase against a node ----------------------------------------------------------


@dataclass
class _Work:
    indices: list[int]
    due: float | None  # perf_counter time this batch is scheduled for (rate-limited runs)
    attempt: int = 1


class _Phase:
    """State shared by the sender tasks and the commit poller of one phase."""

    def __init__(self, txs: Sequence[PreSigned], result: PhaseResult) -> None:
        self.txs = txs
        self.result = result
        self.index = {t.hash: i for i, t in enumerate(txs)}
        self.sent_at: list[float | None] = [None] * len(txs)
        self.accepted: list[bool] = [False] * len(txs)
        self.failed: list[bool] = [False] * len(txs)
        self.seen_at: list[float | None] = [None] * len(txs)
        self.t0: float | None = None  # first send
        self.last_response = 0.0
        self.sending_done = asyncio.Event()
        self.progress = time.perf_counter()  # last time a commit or a send happened
        self.seen_count = 0
        self.failed_count = 0
        self.next_rpc = 0  # round-robin position over the sending endpoints

    def fail(self, i: int) -> None:
        if not self.failed[i]:
            self.failed[i] = True
            self.failed_count += 1
            self.result.rejected += 1

    def outstanding(self) -> int:
        """Transactions that may still commit (accepted or not yet answered, not seen)."""
        return max(0, len(self.txs) - self.seen_count - self.failed_count)


async def _send_worker(rpcs: Sequence[Rpc], phase: _Phase, queue: asyncio.Queue[_Work]
                       ) -> None:
    """Send batches from ``queue``; each batch (retries included) goes to the next of
    ``rpcs`` in turn."""
    result = phase.result
    while True:
        work = await queue.get()
        rpc = rpcs[phase.next_rpc % len(rpcs)]
        phase.next_rpc += 1
        try:
            if work.due is not None:
                delay = work.due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                result.max_send_lag = max(result.max_send_lag, time.perf_counter() - work.due)
            now = time.perf_counter()
            if phase.t0 is None:
                phase.t0 = now
            for i in work.indices:
                if phase.sent_at[i] is None:
                    phase.sent_at[i] = now
            payload = [{"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction",
                        "params": [phase.txs[i].raw_hex]} for i in work.indices]
            try:
                out = await rpc.post(payload)
            except (httpx.HTTPError, RpcFailure) as exc:
                msg = f"transport: {type(exc).__name__} {exc}".strip()
                if work.attempt < TRANSPORT_ATTEMPTS:
                    _count(result.errors, "transport (retried)", msg, len(work.indices))
                    result.retries += len(work.indices)
                    await asyncio.sleep(RETRY_DELAY)
                    queue.put_nowait(_Work(work.indices, None, work.attempt + 1))
                else:
                    _count(result.errors, "transport", msg, len(work.indices))
                    for i in work.indices:
                        phase.fail(i)
                continue
            phase.last_response = time.perf_counter()
            phase.progress = phase.last_response
            retry = _handle_send_response(phase, work, out)
            if retry:
                result.retries += len(retry)
                await asyncio.sleep(RETRY_DELAY)
                queue.put_nowait(_Work(retry, None, work.attempt + 1))
        finally:
            queue.task_done()


def _handle_send_response(phase: _Phase, work: _Work, out: Any) -> list[int]:
    """Record the outcome of each transaction of a batch; return the ones to retry."""
    result = phase.result
    if isinstance(out, dict) and "error" in out:  # the whole batch was refused
        err = out["error"]
        key = f"batch refused: {err.get('message', err)}" if isinstance(err, dict) else str(err)
        _count(result.errors, key, json.dumps(err)[:300], len(work.indices))
        for i in work.indices:
            phase.fail(i)
        return []
    responses = {r.get("id"): r for r in out if isinstance(r, dict)} if isinstance(
        out, list) else {}
    retry: list[int] = []
    for i in work.indices:
        r = responses.get(i)
        if r is None:
            _count(result.errors, "no response for the request", f"response: {out!r:.300}")
            phase.fail(i)
            continue
        if "error" in r:
            err = r["error"] if isinstance(r["error"], dict) else {"message": str(r["error"])}
            data = err.get("data")
            reason = data.get("reason") if isinstance(data, dict) else None
            message = str(err.get("message", err))
            if reason == "known" and work.attempt > 1:
                # An earlier attempt got through after all (e.g. its response was lost).
                phase.accepted[i] = True
                result.accepted += 1
                continue
            if reason in RETRY_REASONS and work.attempt < MAX_ATTEMPTS:
                _count(result.errors, f"{reason} (retried)", message)
                retry.append(i)
                continue
            key = f"{err.get('code')} {reason or message}"
            _count(result.errors, key, message)
            phase.fail(i)
            continue
        got = r.get("result")
        if not isinstance(got, str) or got.lower() != phase.txs[i].hash:
            _count(result.errors, "hash mismatch",
                   f"node returned {got!r} for tx {phase.txs[i].hash}")
            phase.fail(i)
            continue
        phase.accepted[i] = True
        result.accepted += 1
    return retry


async def _poll_commits(rpc: Rpc, phase: _Phase, start_block: int, *, interval: float,
                        commit_timeout: float) -> None:
    """Watch new blocks; mark each transaction of the phase with its first-seen time."""
    result = phase.result
    last = start_block
    while True:
        head = int(await rpc.call("eth_blockNumber"), 16)
        now = time.perf_counter()
        for number in range(last + 1, head + 1):
            block = await rpc.call("eth_getBlockByNumber", [hex(number), False])
            if block is None:
                raise BenchError(f"the node reported head {head} but has no block {number}")
            ours = 0
            for h in block["transactions"]:
                i = phase.index.get(str(h).lower())
                if i is not None and phase.seen_at[i] is None:
                    phase.seen_at[i] = now
                    phase.seen_count += 1
                    ours += 1
            if ours:
                phase.progress = now
            t0 = phase.t0 if phase.t0 is not None else now
            result.blocks.append(BlockSeen(number, len(block["transactions"]), ours, now - t0))
        last = max(last, head)
        if phase.sending_done.is_set() and phase.outstanding() == 0:
            return
        if time.perf_counter() - phase.progress > commit_timeout:
            result.timed_out = (
                f"no transaction of this phase committed for {commit_timeout:.0f} s "
                f"(head #{head}; {phase.outstanding()} accepted transactions still "
                "uncommitted); the node may have stopped producing blocks")
            return
        await asyncio.sleep(interval)


async def run_phase(rpc_url: str, txs: Sequence[PreSigned], *, label: str, batch: int,
                    concurrency: int, rate: float | None, poll_interval: float,
                    commit_timeout: float, http_timeout: float,
                    transport: httpx.AsyncBaseTransport | None = None,
                    send_urls: Sequence[str] | None = None) -> PhaseResult:
    """Send ``txs`` and wait until they commit (or the node stops committing).

    Commits are detected on ``rpc_url``. The batches go to ``rpc_url`` too or, with
    ``send_urls`` (several nodes of one network), to those endpoints round-robin.
    ``transport`` replaces the HTTP transport (tests use ``httpx.MockTransport``).
    """
    urls = list(send_urls) if send_urls else [rpc_url]
    result = PhaseResult(label=label, txs=len(txs), offered_rate=rate, batch=batch,
                         concurrency=concurrency, send_urls=len(urls))
    phase = _Phase(txs, result)
    senders = [Rpc(url, connections=concurrency, timeout=http_timeout, transport=transport)
               for url in urls]
    poller = Rpc(rpc_url, connections=2, timeout=http_timeout, transport=transport)
    try:
        start_block = int(await poller.call("eth_blockNumber"), 16)
        result.start_block = start_block
        queue: asyncio.Queue[_Work] = asyncio.Queue()
        start = time.perf_counter() + 0.05
        for k, first in enumerate(range(0, len(txs), batch)):
            due = start + k * batch / rate if rate else None
            queue.put_nowait(_Work(list(range(first, min(first + batch, len(txs)))), due))
        phase.progress = time.perf_counter()
        poll = asyncio.create_task(_poll_commits(
            poller, phase, start_block, interval=poll_interval, commit_timeout=commit_timeout))
        workers = [asyncio.create_task(_send_worker(senders, phase, queue))
                   for _ in range(concurrency)]
        joined = asyncio.create_task(queue.join())
        try:
            done, _ = await asyncio.wait({joined, poll, *workers},
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not joined:  # a worker or the poller ended early
                    task.result()  # re-raises its error, if any
            if joined in done:
                phase.sending_done.set()
                await poll
            # else: the poller gave up (result.timed_out says why) while still sending
        finally:
            for task in (joined, *workers):
                task.cancel()
            await asyncio.gather(joined, *workers, return_exceptions=True)
            if not poll.done():
                poll.cancel()
                await asyncio.gather(poll, return_exceptions=True)
    finally:
        for sender in senders:
            await sender.close()
        await poller.close()

    t0 = phase.t0 or 0.0
    latencies = [seen - sent for seen, sent in zip(phase.seen_at, phase.sent_at, strict=True)
                 if seen is not None and sent is not None]
    seen_times = [s for s in phase.seen_at if s is not None]
    result.committed = len(seen_times)
    result.send_seconds = phase.last_response - t0 if phase.last_response else 0.0
    result.commit_seconds = max(seen_times) - t0 if seen_times else 0.0
    result.tps = result.committed / result.commit_seconds if result.commit_seconds else 0.0
    result.send_tps = result.accepted / result.send_seconds if result.send_seconds else 0.0
    result.latency = Latency.of(latencies)
    result.blocks = [b for b in result.blocks if b.ours] or result.blocks
    return result


async def verify_receipts(rpc_url: str, txs: Sequence[PreSigned], result: PhaseResult, *,
                          sample: int | None, http_timeout: float) -> None:
    """Check that the phase's transactions have receipts with status 1 (all or a sample)."""
    hashes = [t.hash for t in txs]
    if sample is not None and sample < len(hashes):
        hashes = random.Random(0).sample(hashes, sample)
    rpc = Rpc(rpc_url, connections=2, timeout=http_timeout)
    try:
        chunks = [hashes[k:k + 200] for k in range(0, len(hashes), 200)]
        sem = asyncio.Semaphore(2)

        async def check(chunk: list[str]) -> list[Any]:
            async with sem:
                return await rpc.batch([("eth_getTransactionReceipt", [h]) for h in chunk])

        answers = await asyncio.gather(*(check(c) for c in chunks))
    finally:
        await rpc.close()
    for chunk, receipts in zip(chunks, answers, strict=True):
        for h, receipt in zip(chunk, receipts, strict=True):
            result.receipts_checked += 1
            if receipt is None:
                _count(result.receipt_problems, "no receipt", f"{h} has no receipt")
            elif receipt.get("status") != "0x1":
                _count(result.receipt_problems, f"status {receipt.get('status')}",
                       f"{h} in block {receipt.get('blockNumber')}: status "
                       f"{receipt.get('status')}, gasUsed {receipt.get('gasUsed')}")
            else:
                result.receipts_ok += 1


# -- in-process baseline ---------------------------------------------------------------------


@dataclass
class BaselineResult:
    txs: int
    builder: str  # "pyevm" or "chaincore"
    block_txs: int
    blocks: int
    seconds: float
    decode_seconds: float
    tps: float
    failed: int  # transactions whose receipt says they failed, or that could not apply
    cpu: CpuUsage | None = None


def _build_block(chain: Chain, parent: BlockHeaderAPI, txs: Sequence[SignedTransactionAPI], *,
                 timestamp: int, proposer: bytes, gas_target: int
                 ) -> tuple[BlockAPI, list[ReceiptAPI], int]:
    """The node's block-building steps (``ChainCore.build``) on a plain py-evm chain."""
    header = chain.create_header_from_parent(
        parent, timestamp=timestamp, coinbase=proposer, gas_limit=parent.gas_limit,
        mix_hash=keccak(parent.hash))
    vm = chain.get_vm(header)
    vm.block_preprocessing(vm.get_block())  # type: ignore[attr-defined]
    current = vm.get_header()
    receipts: list[ReceiptAPI] = []
    included: list[SignedTransactionAPI] = []
    skipped = 0
    for tx in txs:
        if current.gas_used + tx.gas > gas_target:
            skipped += 1
            continue
        try:
            receipt, _ = vm.apply_transaction(current, tx)
        except Exception:
            skipped += 1
            continue
        current = vm.add_receipt_to_header(current, receipt)
        current = vm.increment_blob_gas_used(current, tx)
        receipts.append(receipt)
        included.append(tx)
    filled = vm.set_block_transactions_and_withdrawals(vm.get_block(), current, included,
                                                       receipts)
    processed = vm.block_postprocessing(filled)  # type: ignore[attr-defined]
    block = vm.mine_block(processed).block
    chain.chaindb.persist_block(block)
    return block, receipts, skipped


class _DictBatch:
    def __init__(self) -> None:
        self.ops: list[tuple[bytes, bytes | None]] = []

    def put(self, key: bytes, value: bytes) -> None:
        self.ops.append((key, value))

    def delete(self, key: bytes) -> None:
        self.ops.append((key, None))


class _DictDB:
    """The slice of plyvel's DB interface the node's Store uses, over a dict."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:
        return self.data.get(key, default)

    def put(self, key: bytes, value: bytes, sync: bool = False) -> None:
        self.data[key] = value

    def delete(self, key: bytes, sync: bool = False) -> None:
        self.data.pop(key, None)

    @contextmanager
    def write_batch(self, **_: Any) -> Iterator[_DictBatch]:
        batch = _DictBatch()
        yield batch
        for key, value in batch.ops:
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value

    def close(self) -> None:
        pass


def _memory_chain_core(genesis: Genesis) -> ChainCore:
    """The node's ChainCore over an in-memory stand-in for its LevelDB Store."""
    store = Store.__new__(Store)
    store.db = cast(Any, _DictDB())
    store._commit_lock = threading.Lock()
    store._closed = False
    try:
        return ChainCore(store, genesis)
    except Exception as exc:
        raise BenchError(f"--baseline-builder chaincore: the node's Store changed shape "
                         f"({type(exc).__name__}: {exc}); use --baseline-builder pyevm") from exc


def run_baseline(raws: Sequence[bytes], *, chain_id: int, block_txs: int | None,
                 start_nonces: dict[str, int], node_pid: int | None = None,
                 builder_kind: str = "pyevm") -> BaselineResult:
    """py-evm alone: decode, recover senders and build blocks from ``raws`` in memory.

    The chain starts from the local network's genesis (chain id ``chain_id``), with the
    senders' nonces set to ``start_nonces`` so the same signed transactions apply.
    ``builder_kind`` "pyevm" runs the node's block-building steps on a plain py-evm chain
    over AtomicDB; "chaincore" runs the node's own ``ChainCore.build`` over an in-memory
    stand-in for its LevelDB (the block lands in memory; the node's indexes are skipped).
    """
    doc = local_genesis(dev_accounts(), chain_id=chain_id)
    for address, nonce in start_nonces.items():
        entry = doc["alloc"].setdefault(to_checksum_address(address), {"balance": "0x0"})
        entry["nonce"] = nonce
    genesis = parse_genesis(doc)
    per_block = block_txs or genesis.params.max_tx_per_block
    state: Any = genesis.genesis_state()
    core = _memory_chain_core(genesis) if builder_kind == "chaincore" else None
    chain = cast(Chain, chain_class(chain_id).from_genesis(AtomicDB(), genesis.genesis_params(),
                                                           state))
    builder = YilianVM.get_transaction_builder()
    proposer = bytes(to_canonical_address(dev_accounts(1)[0].address))
    parent = chain.get_canonical_head()

    meter = CpuMeter(node_pid)
    start = time.perf_counter()
    txs = [builder.decode(raw) for raw in raws]
    for tx in txs:
        _ = tx.sender  # sender recovery, as the node does on admission
    decoded = time.perf_counter()
    failed = blocks = 0
    for k in range(0, len(txs), per_block):
        chunk = txs[k:k + per_block]
        timestamp = max(int(time.time()), parent.timestamp)
        if core is not None:
            built = core.build(chunk, BlockEnv(timestamp=timestamp, proposer=proposer))
            core.store.commit(built.overlay)
            block, receipts, skipped = built.block, list(built.receipts), len(built.skipped)
        else:
            block, receipts, skipped = _build_block(
                chain, parent, chunk, timestamp=timestamp, proposer=proposer,
                gas_target=genesis.gas_target)
        failed += skipped + sum(1 for r in receipts if not r.state_root)
        parent = block.header
        blocks += 1
    seconds = time.perf_counter() - start
    return BaselineResult(txs=len(txs), block_txs=per_block, blocks=blocks, seconds=seconds,
                          builder=builder_kind,
                          decode_seconds=decoded - start,
                          tps=len(txs) / seconds if seconds else 0.0, failed=failed,
                          cpu=meter.stop())


# -- orchestration -------------------------------------------------------------------------------


@dataclass
class Report:
    rpc: str
    own_network: bool
    chain_id: int
    senders: int
    node: PhaseResult
    baseline: BaselineResult | None = None
    ratio: float | None = None
    load_fraction: float | None = None
    load_basis: str | None = None  # "baseline" or "node" (when the baseline was skipped)
    loaded: PhaseResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.node.ok and (self.loaded is None or self.loaded.ok)
                and (self.baseline is None or self.baseline.failed == 0))

    @property
    def cpu_ratio(self) -> float | None:
        """Baseline CPU seconds per tx over node CPU seconds per tx (None if unknown)."""
        b, n = self.baseline, self.node
        if b is None or b.cpu is None or n.cpu is None or not n.cpu.node or not n.committed:
            return None
        return (b.cpu.bench / b.txs) / (n.cpu.node / n.committed)

    def interference(self) -> list[str]:
        """Warnings when other processes used a noticeable share of the CPUs."""
        out = []
        for name, cpu in (("node phase", self.node.cpu),
                          ("baseline", self.baseline.cpu if self.baseline else None),
                          ("loaded phase", self.loaded.cpu if self.loaded else None)):
            cores = cpu.others_cores if cpu else None
            if cpu is not None and cores is not None and cores > 0.25:
                out.append(f"other processes kept {cores:.2f} of {cpu.cpus} CPUs busy during "
                           f"the {name}: its figures are disturbed; rerun on a quiet machine")
        return out

    @property
    def goals_met(self) -> bool:
        ratio_ok = self.ratio is not None and self.ratio >= 0.7
        p99_ok = self.loaded is not None and self.loaded.latency.p99 < 2.0
        return ratio_ok and p99_ok

    def to_json(self) -> dict[str, Any]:
        def phase(p: PhaseResult | None) -> dict[str, Any] | None:
            if p is None:
                return None
            d = asdict(p)
            d["blocks_used"] = p.blocks_used
            d["mean_block_interval"] = p.mean_block_interval
            d["tx_per_block"] = p.tx_per_block
            d["ok"] = p.ok
            return d

        return _no_nan({
            "rpc": self.rpc, "own_network": self.own_network, "chain_id": self.chain_id,
            "senders": self.senders, "node": phase(self.node),
            "baseline": asdict(self.baseline) if self.baseline else None,
            "ratio": self.ratio, "load_fraction": self.load_fraction,
            "load_basis": self.load_basis, "loaded": phase(self.loaded),
            "cpu_ratio": self.cpu_ratio, "ok": self.ok, "goals_met": self.goals_met,
            "notes": self.notes + self.interference(),
        })


def _no_nan(value: Any) -> Any:
    """``value`` with NaN floats (statistics of empty sets) replaced by None: strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value


def _fmt_errors(errors: dict[str, ErrorCount]) -> list[str]:
    return [f"    {e.count} x {key}: {e.example}"
            for key, e in sorted(errors.items(), key=lambda kv: -kv[1].count)]


def _fmt_cpu(cpu: CpuUsage | None, txs: int, who: str) -> str | None:
    if cpu is None or not cpu.wall:
        return None
    parts = [f"{who} {cpu.bench:.1f} s"]
    if cpu.node is not None:
        parts.insert(0, f"node {cpu.node:.1f} s ({cpu.node * 1000 / max(txs, 1):.2f} ms/tx, "
                        f"{cpu.node / cpu.wall:.2f} cores)")
    if cpu.others is not None:
        parts.append(f"other processes {cpu.others:.1f} s ({cpu.others / cpu.wall:.2f} cores)")
    return f"  CPU over {cpu.wall:.1f} s on {cpu.cpus} CPUs: " + ", ".join(parts)


def _phase_details(p: PhaseResult) -> list[str]:
    lines = [
        f"  sent {p.txs} in {p.send_seconds:.2f} s ({p.send_tps:.0f} tx/s admitted), "
        f"accepted {p.accepted}, rejected {p.rejected}, retried {p.retries}; "
        f"committed {p.committed}",
        f"  blocks {p.blocks_used}: mean interval {p.mean_block_interval:.2f} s, "
        f"{p.tx_per_block:.0f} tx/block (largest {max((b.ours for b in p.blocks), default=0)})"
        f"; latency mean {p.latency.mean:.2f} s p90 {p.latency.p90:.2f} s",
    ]
    used = [b for b in p.blocks if b.ours]
    shown = " ".join(f"#{b.number}:{b.ours}@{b.seen:.2f}s" for b in used[:12])
    lines.append(f"  commits (block:txs@seen): {shown}" + (" ..." if len(used) > 12 else ""))
    cpu = _fmt_cpu(p.cpu, p.committed, "load generator")
    if cpu:
        lines.append(cpu)
    lines.append(f"  receipts: {p.receipts_ok}/{p.receipts_checked} with status 1")
    if p.offered_rate:
        lines.append(f"  schedule: worst send lag {p.max_send_lag * 1000:.0f} ms behind "
                     "the offered rate")
    if p.errors:
        lines.append("  send errors by kind:")
        lines += _fmt_errors(p.errors)
    if p.receipt_problems:
        lines.append("  receipt problems:")
        lines += _fmt_errors(p.receipt_problems)
    if p.timed_out:
        lines.append(f"  ERROR: {p.timed_out}")
    return lines


def format_report(r: Report) -> str:
    n = r.node
    where = "1 validator" if r.own_network else r.rpc
    lines = [
        f"node ({where}, http batch {n.batch}, concurrency {n.concurrency}): {n.committed} tx "
        f"committed in {n.commit_seconds:.2f} s = {n.tps:.0f} tx/s; latency p50 "
        f"{n.latency.p50:.2f} s p99 {n.latency.p99:.2f} s max {n.latency.max:.2f} s; "
        f"{n.blocks_used} blocks",
        *_phase_details(n),
    ]
    b = r.baseline
    if b is not None:
        how = "in-process py-evm" if b.builder == "pyevm" else "in-process ChainCore.build"
        lines.append(f"baseline ({how}, blocks of {b.block_txs}): {b.txs} tx in "
                     f"{b.seconds:.2f} s = {b.tps:.0f} tx/s")
        lines.append(f"  decode + sender recovery {b.decode_seconds:.2f} s, {b.blocks} blocks"
                     + (f"; {b.failed} FAILED transactions" if b.failed else ""))
        cpu = _fmt_cpu(b.cpu, b.txs, "baseline")
        if cpu:
            lines.append(cpu)
    if r.ratio is not None:
        verdict = "met" if r.ratio >= 0.7 else "NOT met"
        lines.append(f"ratio node/baseline = {r.ratio:.2f} (goal >= 0.70: {verdict})")
        cpu_ratio = r.cpu_ratio
        if cpu_ratio is not None:
            lines.append(f"  CPU time per tx, baseline/node = {cpu_ratio:.2f} (less sensitive "
                         "to other load on the machine)")
    if r.loaded is not None and r.load_fraction is not None:
        p = r.loaded
        verdict = "met" if p.latency.p99 < 2.0 else "NOT met"
        lines.append(
            f"at {r.load_fraction * 100:.0f}% of {r.load_basis} ({p.offered_rate:.0f} tx/s "
            f"offered): {p.committed} tx committed at {p.tps:.0f} tx/s; latency p50 "
            f"{p.latency.p50:.2f} s p99 {p.latency.p99:.2f} s max {p.latency.max:.2f} s; "
            f"{p.blocks_used} blocks (goal p99 < 2 s: {verdict})")
        lines += _phase_details(p)
    lines += [f"note: {note}" for note in r.notes + r.interference()]
    return "\n".join(lines)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pid_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (reads /proc, not the command line)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def free_port_range(count: int, attempts: int = 200) -> int:
    """A base port such that ``base .. base + count - 1`` are all free on 127.0.0.1.

    Chosen below the kernel's ephemeral range (32768+) so the nodes' own outgoing
    connections cannot take one of them between this check and the bind. (The tests use
    this too.)
    """
    for _ in range(attempts):
        base = random.randrange(20_000, 32_000 - count)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise BenchError(f"found no {count} consecutive free TCP ports")


def start_network(data_dir: Path, timeout: float = 60.0, nodes: int = 1) -> dict[str, Any]:
    """``launcher.up`` a fresh network of ``nodes`` node processes in ``data_dir``: one
    node is a single validator, more a BFT consortium of that many validators. Returns
    network.json."""
    # A consortium node uses two ports (RPC, p2p); launcher.up wants them consecutive.
    base = _free_port() if nodes == 1 else free_port_range(2 * nodes)
    return launcher.up(data_dir, nodes=nodes, base_port=base, timeout=timeout)


def _own_node(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is still a node of ``data_dir`` (not a reused pid)."""
    cmdline = b""
    for _ in range(20):  # empty while the process is still inside execve
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        if cmdline:
            break
        time.sleep(0.1)
    return str(data_dir.resolve()).encode() in cmdline


def stop_network(data_dir: Path) -> None:
    """``launcher.down``, then make sure the node processes this bench started are gone.

    With several nodes every one gets SIGTERM first, so they shut down in parallel
    (``launcher.down`` alone stops them one after the other)."""
    try:
        pids = [int(e["pid"]) for e in launcher.read_network(data_dir)["nodes"]
                if e.get("pid")]
    except (launcher.LauncherError, KeyError, TypeError, ValueError):
        pids = []
    if len(pids) > 1:
        for pid in pids:
            if _pid_running(pid) and _own_node(pid, data_dir):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
    launcher.down(data_dir)
    for pid in pids:
        if not _pid_running(pid) or not _own_node(pid, data_dir):
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _pid_running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_running(pid):
            os.kill(pid, signal.SIGKILL)


def _senders_from_file(path: Path) -> list[Sender]:
    try:
        doc = json.loads(path.read_text())
        return [Sender(a["address"], a["privateKey"]) for a in doc["accounts"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"cannot read accounts from {path}: {exc}; expected a network.json "
                         'with "accounts": [{"address", "privateKey"}, ...]') from exc


def _pid_from_file(path: Path, rpc_url: str) -> int | None:
    """The pid network.json records for the node serving ``rpc_url``, if it runs here."""
    try:
        nodes = json.loads(path.read_text()).get("nodes", [])
    except (OSError, ValueError, AttributeError):
        return None
    for entry in nodes:
        if isinstance(entry, dict) and entry.get("rpc") == rpc_url and entry.get("pid"):
            pid = int(entry["pid"])
            return pid if _proc_cpu(pid) is not None else None
    return None


async def _node_info(rpc_url: str, senders: Sequence[Sender], timeout: float
                     ) -> tuple[int, list[int]]:
    rpc = Rpc(rpc_url, connections=1, timeout=timeout)
    try:
        chain_id = int(await rpc.call("eth_chainId"), 16)
        nonces = await rpc.batch([("eth_getTransactionCount", [s.address, "pending"])
                                  for s in senders])
        return chain_id, [int(n, 16) for n in nonces]
    finally:
        await rpc.close()


def _sign(senders: Sequence[Sender], nonces: Sequence[int], count: int, chain_id: int
          ) -> list[PreSigned]:
    started = time.perf_counter()
    txs = presign(senders, nonces, count, chain_id=chain_id, tag=os.urandom(16))
    log(f"signed {count} transactions from {len(senders)} senders in "
        f"{time.perf_counter() - started:.1f} s")
    return txs


def _run_node_phase(args: argparse.Namespace, rpc_url: str, txs: Sequence[PreSigned], *,
                    label: str, rate: float | None, node_pid: int | None) -> PhaseResult:
    log(f"{label}: sending {len(txs)} transactions"
        + (f" at {rate:.0f} tx/s" if rate else " as fast as the node takes them"))
    meter = CpuMeter(node_pid)
    result = asyncio.run(run_phase(
        rpc_url, txs, label=label, batch=args.batch, concurrency=args.concurrency, rate=rate,
        poll_interval=args.poll_interval, commit_timeout=args.commit_timeout,
        http_timeout=args.http_timeout))
    result.cpu = meter.stop()
    log(f"{label}: {result.committed}/{len(txs)} committed, {result.tps:.0f} tx/s, "
        f"p99 {result.latency.p99:.2f} s")
    if args.verify != "none":
        sample = args.verify_sample if args.verify == "sample" else None
        asyncio.run(verify_receipts(rpc_url, txs, result, sample=sample,
                                    http_timeout=args.http_timeout))
    return result


def run(args: argparse.Namespace) -> Report:
    """Run the whole benchmark described by parsed ``args`` and return its report."""
    data_dir: Path | None = None
    own = args.rpc is None
    try:
        if own:
            data_dir = Path(tempfile.mkdtemp(prefix="yilian-bench-"))
            log(f"starting a local network in {data_dir}")
            network = start_network(data_dir)
            rpc_url = str(network["nodes"][0]["rpc"])
            node_pid = network["nodes"][0].get("pid")
            all_senders = [Sender(a.address, a.private_key) for a in dev_accounts(MAX_SENDERS)]
        else:
            rpc_url = args.rpc
            all_senders = (_senders_from_file(args.network_file) if args.network_file else
                           [Sender(a.address, a.private_key) for a in dev_accounts(MAX_SENDERS)])
            node_pid = args.node_pid or (_pid_from_file(args.network_file, rpc_url)
                                         if args.network_file else None)
        if args.senders > len(all_senders):
            raise BenchError(f"--senders {args.senders}: only {len(all_senders)} accounts "
                             "are available")
        senders = all_senders[:args.senders]
        chain_id, nonces = asyncio.run(_node_info(rpc_url, senders, args.http_timeout))
        per_sender = math.ceil(args.txs / len(senders))
        notes = []
        if per_sender > 1024:
            notes.append(f"{per_sender} transactions per sender exceed the node's default "
                         "nonce gap (1024): expect nonce_too_high retries; use more --senders")
        txs = _sign(senders, nonces, args.txs, chain_id)

        node = _run_node_phase(args, rpc_url, txs, label="saturation" if not args.rate
                               else "rate-limited", rate=args.rate, node_pid=node_pid)
        report = Report(rpc=rpc_url, own_network=own, chain_id=chain_id, senders=len(senders),
                        node=node, notes=notes)
        if node.timed_out:
            raise_for = node.timed_out
            if data_dir is not None:
                raise_for += f"; node log: {data_dir / 'node-1' / 'node.log'}"
            report.notes.append(raise_for)
            return report

        if not args.skip_baseline:
            log(f"baseline: building blocks from the same {len(txs)} transactions in-process")
            report.baseline = run_baseline(
                [t.raw for t in txs], chain_id=chain_id, block_txs=args.baseline_block_txs,
                start_nonces={s.address: n for s, n in zip(senders, nonces, strict=True)},
                node_pid=node_pid, builder_kind=args.baseline_builder)
            log(f"baseline: {report.baseline.tps:.0f} tx/s")
            if report.baseline.tps:
                report.ratio = node.tps / report.baseline.tps

        if args.load_fraction:
            basis_tps = report.baseline.tps if report.baseline else node.tps
            report.load_basis = "baseline" if report.baseline else "node saturation"
            report.load_fraction = args.load_fraction
            rate = args.load_fraction * basis_tps
            if rate <= 0:
                report.notes.append("load phase skipped: no rate to base it on")
            else:
                _, nonces2 = asyncio.run(_node_info(rpc_url, senders, args.http_timeout))
                txs2 = _sign(senders, nonces2, args.load_txs or args.txs, chain_id)
                report.loaded = _run_node_phase(args, rpc_url, txs2, label="loaded",
                                                rate=rate, node_pid=node_pid)
        return report
    finally:
        if data_dir is not None:
            try:
                stop_network(data_dir)
                log("local network stopped")
            except Exception as exc:
                log(f"WARNING: could not stop the network in {data_dir}: {exc}")
            else:
                if not args.keep_data:
                    shutil.rmtree(data_dir, ignore_errors=True)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"must be between 0 and 10, got {text}")
    return value


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout; appends a default only where the help has none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (action.default not in (None, False, argparse.SUPPRESS)
                and "default" not in text):
            text += " (default: %(default)s)"
        return text


_EPILOG = """\
definitions:
  send time     when the HTTP request carrying the transaction first started
  commit time   when the poller (eth_blockNumber every --poll-interval, then
                eth_getBlockByNumber(n, false)) first saw a block holding it
  latency       commit time - send time
  tx/s          committed transactions / (last commit time - first send time)
  baseline      py-evm alone, same process: decode the same raw transactions,
                recover their senders and build blocks with the node's steps
                (ChainCore.build) over an in-memory AtomicDB, from the same
                local genesis
  ratio         node tx/s / baseline tx/s (goal >= 0.7); the loaded phase's
                goal is p99 < 2 s
  CPU lines     CPU seconds of the node process, of this process and of every
                other process on the machine during the phase (from /proc):
                other processes competing for the CPUs disturb the figures

Admission refusals that clear by themselves (nonce_too_high, mempool_full,
sender_limit) are retried after 0.25 s; every error is counted by kind in the
report. Exit status: 0 when every transaction committed with status 1 (and,
with --check, both goals were met), 1 otherwise, 130 when interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m yilian.bench.load",
        description=(
            "Measure a node's committed tx/s and commit latency for RecordStore.put calls, "
            "and in the same run the in-process py-evm block-building rate for the same "
            "signed transactions; print both and their ratio. By default a fresh "
            "single-validator local network is started in a temporary directory and "
            "stopped at the end."),
        epilog=_EPILOG,
        formatter_class=_HelpFormatter,
    )
    target = p.add_argument_group("target node")
    target.add_argument("--rpc", metavar="URL",
                        help="JSON-RPC URL of a running node to load instead of starting a "
                        "fresh local network (e.g. http://127.0.0.1:8545/rpc)")
    target.add_argument("--network-file", metavar="PATH", type=Path,
                        help="with --rpc: network.json whose 'accounts' (address, "
                        "privateKey) sign the load; default: the local development accounts")
    target.add_argument("--node-pid", type=_positive_int, default=None,
                        help="with --rpc: pid of the node process, to report its CPU time "
                        "(default: from --network-file when the node runs on this machine)")
    target.add_argument("--keep-data", action="store_true",
                        help="keep the temporary network directory (node log, chain data)")
    load = p.add_argument_group("load")
    load.add_argument("-n", "--txs", type=_positive_int, default=4000,
                      help="transactions to pre-sign and send in the main phase")
    load.add_argument("--senders", type=_positive_int, default=8,
                      help=f"sending accounts (at most {MAX_SENDERS} on the local network); "
                      "each gets txs/senders consecutive nonces, starting from its "
                      "eth_getTransactionCount(pending)")
    load.add_argument("--concurrency", type=_positive_int, default=4,
                      help="HTTP requests in flight at once")
    load.add_argument("--batch", type=_positive_int, default=50,
                      help="eth_sendRawTransaction calls per JSON-RPC batch request")
    load.add_argument("--rate", type=_positive_float, default=None,
                      help="offered load in tx/s for the main phase (open loop: batches "
                      "leave on a fixed schedule); default: saturation, as fast as the node "
                      "answers")
    load.add_argument("--load-fraction", type=_fraction, default=0.8,
                      help="after the main phase and the baseline, run a rate-limited phase "
                      "at this fraction of the baseline tx/s (of the node's saturation tx/s "
                      "with --skip-baseline) and report its latency; 0 skips it")
    load.add_argument("--load-txs", type=_positive_int, default=None,
                      help="transactions in the rate-limited phase (default: --txs)")
    baseline = p.add_argument_group("baseline")
    baseline.add_argument("--skip-baseline", action="store_true",
                          help="do not measure in-process py-evm block building")
    baseline.add_argument("--baseline-builder", choices=("pyevm", "chaincore"),
                          default="pyevm",
                          help="pyevm: the node's block-building steps on a plain py-evm "
                          "chain over AtomicDB; chaincore: the node's own ChainCore.build over "
                          "an in-memory stand-in for its LevelDB store (a cross-check)")
    baseline.add_argument("--baseline-block-txs", type=_positive_int, default=None,
                          help="transactions per baseline block (default: the local "
                          "genesis' maxTxPerBlock, 2000)")
    mon = p.add_argument_group("measurement and output")
    mon.add_argument("--poll-interval", type=_positive_float, default=0.05,
                     help="seconds between eth_blockNumber polls that detect commits")
    mon.add_argument("--commit-timeout", type=_positive_float, default=30.0,
                     help="give up when none of the outstanding transactions commits for "
                     "this many seconds")
    mon.add_argument("--http-timeout", type=_positive_float, default=60.0,
                     help="timeout of one HTTP request, in seconds")
    mon.add_argument("--verify", choices=("all", "sample", "none"), default="all",
                     help="after each phase, check eth_getTransactionReceipt status 1 for "
                     "all transactions, a random sample, or none")
    mon.add_argument("--verify-sample", type=_positive_int, default=200,
                     help="sample size for --verify sample")
    mon.add_argument("--json", metavar="PATH", nargs="?", const="-", default=None,
                     help="also write the report as JSON to PATH ('-' or no value: stdout, "
                     "after the text summary)")
    mon.add_argument("--check", action="store_true",
                     help="exit with status 1 unless ratio >= 0.7 and the loaded phase's "
                     "p99 < 2 s")
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.senders > MAX_SENDERS and args.network_file is None:
        parser.error(f"--senders: the local network authorises {MAX_SENDERS} accounts")
    if args.network_file is not None and args.rpc is None:
        parser.error("--network-file needs --rpc (a fresh network uses its own accounts)")
    return args


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        report = run(args)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except (BenchError, launcher.LauncherError) as exc:
        log(f"error: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(format_report(report), flush=True)
    if args.json is not None:
        text = json.dumps(report.to_json(), indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    if not report.ok:
        return 1
    if args.check and not report.goals_met:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
