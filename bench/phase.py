"""One load phase against a node: send pre-signed transactions in JSON-RPC batches and
watch the chain until every accepted one has committed (or none commits for a while).

Send time is when the HTTP request carrying a transaction first started; commit time is
when the poller first saw a block holding it. Admission refusals that clear by themselves
(:data:`RETRY_REASONS`) and transport errors are retried; every other error is counted by
kind in the :class:`PhaseResult`, never dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from yilian.bench.command import BenchError, log
from yilian.bench.measure import BlockSeen, CpuMeter, Latency, PhaseResult, count_error
from yilian.bench.rpc import Rpc, RpcFailure
from yilian.bench.transactions import PreSigned

RETRY_REASONS = frozenset({"nonce_too_high", "mempool_full", "sender_limit"})
RETRY_DELAY = 0.25  # seconds
MAX_ATTEMPTS = 120  # ~30 s of retrying per transaction before giving up
TRANSPORT_ATTEMPTS = 3


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
                    count_error(result.errors, "transport (retried)", msg, len(work.indices))
                    result.retries += len(work.indices)
                    await asyncio.sleep(RETRY_DELAY)
                    queue.put_nowait(_Work(work.indices, None, work.attempt + 1))
                else:
                    count_error(result.errors, "transport", msg, len(work.indices))
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
        count_error(result.errors, key, json.dumps(err)[:300], len(work.indices))
        for i in work.indices:
            phase.fail(i)
        return []
    responses = {r.get("id"): r for r in out if isinstance(r, dict)} if isinstance(
        out, list) else {}
    retry: list[int] = []
    for i in work.indices:
        r = responses.get(i)
        if r is None:
            count_error(result.errors, "no response for the request", f"response: {out!r:.300}")
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
                count_error(result.errors, f"{reason} (retried)", message)
                retry.append(i)
                continue
            key = f"{err.get('code')} {reason or message}"
            count_error(result.errors, key, message)
            phase.fail(i)
            continue
        got = r.get("result")
        if not isinstance(got, str) or got.lower() != phase.txs[i].hash:
            count_error(result.errors, "hash mismatch",
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
                count_error(result.receipt_problems, "no receipt", f"{h} has no receipt")
            elif receipt.get("status") != "0x1":
                count_error(result.receipt_problems, f"status {receipt.get('status')}",
                       f"{h} in block {receipt.get('blockNumber')}: status "
                       f"{receipt.get('status')}, gasUsed {receipt.get('gasUsed')}")
            else:
                result.receipts_ok += 1


def run_measured(args: argparse.Namespace, rpc_url: str, txs: Sequence[PreSigned], *,
                 label: str, rate: float | None, node_pid: int | Sequence[int] | None,
                 send_urls: Sequence[str] | None = None) -> PhaseResult:
    """:func:`run_phase` with the CPU time of the node process(es) ``node_pid``, then (per
    ``args.verify``) the receipt check; the phase's shape comes from the command's ``args``
    (batch, concurrency, poll_interval, commit_timeout, http_timeout, verify*)."""
    where = f" to {len(send_urls)} node(s)" if send_urls else ""
    log(f"{label}: sending {len(txs)} transactions{where}"
        + (f" at {rate:.0f} tx/s" if rate else
           " as fast as they take them" if send_urls else " as fast as the node takes them"))
    meter = CpuMeter(node_pid)
    result = asyncio.run(run_phase(
        rpc_url, txs, label=label, batch=args.batch, concurrency=args.concurrency, rate=rate,
        poll_interval=args.poll_interval, commit_timeout=args.commit_timeout,
        http_timeout=args.http_timeout, send_urls=send_urls))
    result.cpu = meter.stop()
    log(f"{label}: {result.committed}/{len(txs)} committed, {result.tps:.0f} tx/s, "
        f"p99 {result.latency.p99:.2f} s")
    if args.verify != "none":
        sample = args.verify_sample if args.verify == "sample" else None
        asyncio.run(verify_receipts(rpc_url, txs, result, sample=sample,
                                    http_timeout=args.http_timeout))
    return result
