"""Soak benchmark: memory, CPU and latency of a local consortium under a steady, modest load.

``python -m yilian.bench.soak --minutes 30 --rate 40 --nodes 4`` starts a fresh local
network of ``--nodes`` validators (``bench.network.start_network``), sends signed transactions
at a fixed rate (value transfers by default, ``--kind put`` for ``RecordStore.put``), spread
round-robin over the nodes (each development account always sends to the same node, so its
nonces arrive in order), and waits for every receipt. Every ``--interval`` seconds it prints
one line per interval: each node's resident memory (``VmRSS`` of ``/proc/<pid>/status``),
the nodes' CPU seconds (``utime + stime`` of ``/proc/<pid>/stat``) and CPU milliseconds per
committed transaction, the send-to-receipt latency p50/p99 of the transactions committed
in that interval, the blocks the first node committed (``blk``) and how many of them were
decided after round 0 (``r>0``: a round timed out, from the commit certificates), and the
seconds all nodes' LevelDB spent compacting (``cmp s``, from each database's ``LOG``, see
:mod:`yilian.bench.leveldb_log`). At the end it prints a table, the slope of the nodes' RSS
(MB/min, least squares over the second half of the run, per node and in total) and the
latency p99 of the first vs the last full interval with their ratio (the drain after the
last send, waiting for the last receipts, is reported as its own interval and left out of
that comparison), the second half's trend of p50, p99 and CPU per transaction: mean,
least-squares slope, and the drift that slope makes over the half as a share of the mean
(flat: within noise of 0), and what the slow intervals have in common (late rounds, compaction).
Where the heap is comes from each node's ``/metrics`` memory gauges (LevelDB's memtables
and block cache, malloc in use and free, Python's allocated blocks), read every ``--sample``
seconds and summarised per node the same way.

Definitions: send time is when the ``eth_sendRawTransaction`` request started; receipt
time is when the poller of the node the transaction was sent to (``eth_blockNumber`` every
``--poll-interval``, then the new blocks, then ``eth_getTransactionReceipt`` of ours in
them) first saw it committed; latency = receipt time - send time.

``--tracemalloc SECONDS`` makes the nodes (or the ``--trace-node``) write a tracemalloc
snapshot that often (``YILIAN_TRACEMALLOC``, see ``yilian.node.diagnostics``; ``--frames 0``:
only a census of live objects per type) and prints the top growing allocation sites and
object types at the end; ``--compare DIR`` prints them for snapshots written earlier. The
load generator shares the machine with the nodes: CPU seconds per committed transaction are
steadier than wall-clock figures when other processes compete for the CPUs.
Exit status: 0 when every transaction committed with status 1, 1 otherwise, 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import httpx
from eth.vm.forks.prague.transactions import PragueTransactionBuilder
from eth_hash.auto import keccak
from eth_keys import keys
from eth_typing import Address

from yilian.bench.command import BenchError, log, positive_float, positive_int, run_main
from yilian.bench.leveldb_log import LogReader, find_logs
from yilian.bench.measure import proc_cpu
from yilian.bench.network import start_network, stop_network
from yilian.bench.phase import RETRY_REASONS, TRANSPORT_ATTEMPTS
from yilian.bench.rpc import Rpc, RpcFailure
from yilian.bench.soak_report import Soak, format_interval, header, summary, table_files
from yilian.bench.transactions import Sender, presign
from yilian.node import diagnostics
from yilian.node.genesis import YilianVM

SINK = "0x" + keccak(b"yilian soak sink").hex()[-40:]  # receives the value transfers
TRANSFER_GAS = 21_000
MAX_SEND_ATTEMPTS = 40  # x RETRY_DELAY: ~10 s of retrying a refusal that clears by itself
RETRY_DELAY = 0.25
MAX_BLOCKS_PER_POLL = 50


# -- transactions ------------------------------------------------------------------------


def sign_transfer(sender: Sender, nonce: int, chain_id: int) -> tuple[str, str]:
    """A zero-fee type-2 transfer of 1 wei to ``SINK``: (raw hex, hash hex).

    Signed with the node's own transaction builder: a third of eth_account's CPU time,
    which matters when the load generator shares the machine with the nodes.
    """
    builder = cast(type[PragueTransactionBuilder], YilianVM.get_transaction_builder())
    unsigned = builder.new_unsigned_dynamic_fee_transaction(
        chain_id=chain_id, nonce=nonce, max_priority_fee_per_gas=0, max_fee_per_gas=0,
        gas=TRANSFER_GAS, to=Address(bytes.fromhex(SINK[2:])), value=1, data=b"",
        access_list=())
    signed = unsigned.as_signed_transaction(keys.PrivateKey(bytes.fromhex(sender.private_key[2:])))
    return "0x" + signed.encode().hex(), "0x" + bytes(signed.hash).hex()


def sign_put(sender: Sender, nonce: int, chain_id: int) -> tuple[str, str]:
    """A ``RecordStore.put`` of a fresh random key (bench.load's signer): (raw, hash)."""
    tx = presign([sender], [nonce], 1, chain_id=chain_id, tag=os.urandom(16))[0]
    return tx.raw_hex, tx.hash


SIGNERS = {"transfer": sign_transfer, "put": sign_put}


# -- the load ----------------------------------------------------------------------------


async def send_one(soak: Soak, rpc: Rpc, pending: dict[str, float], raw: str,
                   tx_hash: str) -> None:
    """Send one raw transaction; retry refusals that clear by themselves; count failures."""
    pending[tx_hash] = soak.now()
    soak.current.sent += 1
    transport_errors = 0
    for _ in range(MAX_SEND_ATTEMPTS):
        try:
            out = await rpc.post({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                                  "params": [raw]})
        except (httpx.HTTPError, RpcFailure) as exc:
            # A keep-alive connection the server closed as it was reused fails this way;
            # resending the same signed transaction is safe (a second copy is "known").
            transport_errors += 1
            soak.transport_retries += 1
            if transport_errors < TRANSPORT_ATTEMPTS:
                continue
            pending.pop(tx_hash, None)
            soak.fail(f"{tx_hash} to {rpc.url}: {type(exc).__name__} {exc}")
            return
        error = out.get("error") if isinstance(out, dict) else {"message": repr(out)[:200]}
        if not error:
            return
        reason = (error.get("data") or {}).get("reason") if isinstance(error, dict) else None
        if reason == "known":
            return
        if reason not in RETRY_REASONS:
            pending.pop(tx_hash, None)
            soak.fail(f"{tx_hash} refused by {rpc.url}: {error}")
            return
        soak.retries[reason] = soak.retries.get(reason, 0) + 1
        await asyncio.sleep(RETRY_DELAY)
    pending.pop(tx_hash, None)
    soak.fail(f"{tx_hash}: still refused by {rpc.url} after {MAX_SEND_ATTEMPTS} attempts")


async def watch_node(soak: Soak, rpc: Rpc, pending: dict[str, float], start: int,
                     stop: asyncio.Event, poll: float, rounds: bool = False) -> None:
    """Mark the transactions sent to this node committed as its blocks show them; check
    their receipts. One poll: eth_blockNumber, then one batch of the new blocks (at most
    ``MAX_BLOCKS_PER_POLL``) and one batch of our receipts in them. With ``rounds`` (one
    node's watcher), also count the blocks and those decided after round 0, from their
    commit certificates."""
    seen = start
    while not stop.is_set():
        try:
            head = int(await rpc.call("eth_blockNumber"), 16)
            numbers = list(range(seen + 1, min(head, seen + MAX_BLOCKS_PER_POLL) + 1))
            blocks = await rpc.batch([("eth_getBlockByNumber", [hex(n), False])
                                      for n in numbers]) if numbers else []
            if rounds and numbers:
                certs = await rpc.batch([("yilian_getCommitCertificate", [hex(n)])
                                         for n in numbers])
                for block, cert in zip(blocks, certs, strict=True):
                    if not block:
                        break  # counted with the block, at the next poll
                    soak.current.blocks += 1
                    soak.current.late_blocks += bool(cert and int(cert["round"], 16))
            at = soak.now()
            ours = [h for block in blocks if block for h in block["transactions"]
                    if h in pending]
            receipts = await rpc.batch([("eth_getTransactionReceipt", [h])
                                        for h in ours]) if ours else []
            for h, receipt in zip(ours, receipts, strict=True):
                sent = pending.pop(h, None)
                if sent is None:
                    continue
                if not receipt or receipt.get("status") != "0x1":
                    soak.fail(f"{h}: receipt {receipt!r:.200}")
                    continue
                soak.current.committed += 1
                soak.current.latencies.append(at - sent)
            for n, block in zip(numbers, blocks, strict=True):
                if not block:
                    break  # not served yet: next poll
                seen = n
        except (RpcFailure, httpx.HTTPError) as exc:
            log(f"poll of {rpc.url}: {exc}")
        await asyncio.sleep(poll)


async def run_load(args: argparse.Namespace, network: dict[str, Any]) -> Soak:
    nodes = network["nodes"]
    urls = [n["rpc"] for n in nodes]
    pids = [int(n["pid"]) for n in nodes]
    chain_id = int(network["chainId"])
    senders = [Sender(a["address"], a["privateKey"]) for a in network["accounts"]]
    if len(senders) < len(urls):
        raise BenchError(f"{len(senders)} accounts cannot cover {len(urls)} nodes")
    rpcs = [Rpc(u, connections=8, timeout=args.http_timeout) for u in urls]
    sign = SIGNERS[args.kind]
    tasks: set[asyncio.Task[None]] = set()  # sends and watchers, cancelled if interrupted
    try:
        # Each account always sends to the same node, so its nonces reach it in order.
        by_node = [[s for k, s in enumerate(senders) if k % len(urls) == j]
                   for j in range(len(urls))]
        nonces = {s.address: int(await rpcs[k % len(urls)].call(
            "eth_getTransactionCount", [s.address, "pending"]), 16)
            for k, s in enumerate(senders)}
        start = int(await rpcs[0].call("eth_blockNumber"), 16)
        soak = Soak(pids=pids, pending=[{} for _ in urls])
        soak.last_cpu = [proc_cpu(pid) for pid in pids]
        soak.sample()
        stop = asyncio.Event()
        soak.logs = [[LogReader(p) for p in find_logs(Path(n["home"]))] for n in nodes]
        for readers in soak.logs:
            for reader in readers:
                reader.read()  # the start-up's work is not the soak's
        watchers = [asyncio.create_task(watch_node(soak, rpc, pending, start, stop,
                                                   args.poll_interval, rounds=k == 0))
                    for k, (rpc, pending) in enumerate(zip(rpcs, soak.pending, strict=True))]
        watchers.append(asyncio.create_task(watch_gauges(soak, urls, stop, args.sample)))
        tasks.update(watchers)
        sends: set[asyncio.Task[None]] = set()
        total = int(args.minutes * 60 * args.rate)
        print(header(len(urls)), flush=True)
        next_report, next_sample = args.interval, args.sample
        turn = [0] * len(urls)
        for k in range(total):
            due = k / args.rate
            while True:
                now = soak.now()
                if now >= next_sample:
                    soak.sample()
                    next_sample += args.sample
                if now >= next_report:
                    print(format_interval(soak.close_interval(), len(soak.intervals)),
                          flush=True)
                    next_report += args.interval
                if now >= due:
                    break
                await asyncio.sleep(min(due, next_sample, next_report) - now)
            node = k % len(urls)
            sender = by_node[node][turn[node] % len(by_node[node])]
            turn[node] += 1
            raw, tx_hash = sign(sender, nonces[sender.address], chain_id)
            nonces[sender.address] += 1
            task = asyncio.create_task(send_one(soak, rpcs[node], soak.pending[node], raw,
                                                tx_hash))
            sends.add(task)
            task.add_done_callback(sends.discard)
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(0)  # behind schedule too, let the sends and polls run
        end = args.minutes * 60
        while (now := soak.now()) < end:  # the last sending interval ends on time
            await asyncio.sleep(end - now)
        print(format_interval(soak.close_interval(), len(soak.intervals)), flush=True)
        if sends:
            await asyncio.gather(*sends)
        deadline = time.monotonic() + args.drain_timeout
        while soak.outstanding() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*watchers)
        for pending in soak.pending:
            for tx_hash in pending:
                soak.fail(f"{tx_hash}: no receipt within {args.drain_timeout:.0f} s after the "
                          "last send")
            pending.clear()
        soak.current.drain = True
        print(format_interval(soak.close_interval(), len(soak.intervals)), flush=True)
        return soak
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for rpc in rpcs:
            await rpc.close()


async def watch_gauges(soak: Soak, urls: list[str], stop: asyncio.Event,
                       every: float) -> None:
    """Read every node's ``/metrics`` memory gauges each ``every`` seconds (a node that does
    not answer is left out of that sample)."""
    async with httpx.AsyncClient(timeout=10) as client:
        while not stop.is_set():
            row: list[dict[str, float]] = []
            for url in urls:
                try:
                    text = (await client.get(url.removesuffix("/rpc") + "/metrics")).text
                except httpx.HTTPError:
                    row.append({})
                    continue
                row.append({k: float(v) for k, _, v in (
                    line.partition(" ") for line in text.splitlines()
                    if line and not line.startswith("#"))})
            soak.gauges.append((soak.now(), row))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)


def run(args: argparse.Namespace) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="yilian-soak-"))
    snapshots = Path(args.snapshot_dir or data_dir / "tracemalloc")
    if args.tracemalloc:
        os.environ[diagnostics.ENV_VAR] = (f"{snapshots},{args.tracemalloc},{args.frames},"
                                           f"{args.trace_node or ''}")
    try:
        log(f"starting {args.nodes} nodes in {data_dir}")
        network = start_network(data_dir, nodes=args.nodes, timeout=args.start_timeout,
                                env=node_env(args.node_env))
        log(f"sending {args.rate:g} {args.kind} tx/s for {args.minutes:g} min")
        soak = asyncio.run(run_load(args, network))
        print(summary(soak, len(network["nodes"])), flush=True)
        print(table_files([n["home"] for n in network["nodes"]]), flush=True)
        if args.tracemalloc:
            print(diagnostics.compare_snapshots(snapshots, top=args.top, key=args.group),
                  flush=True)
        failed = sum(i.failed for i in soak.intervals)
        return 1 if failed else 0
    finally:
        os.environ.pop(diagnostics.ENV_VAR, None)
        stop_network(data_dir)
        if args.keep_data:
            log(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def _frames(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be 0..100, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m yilian.bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=positive_float, default=30.0, help="how long to send")
    p.add_argument("--rate", type=positive_float, default=40.0, help="transactions per second")
    p.add_argument("--nodes", type=positive_int, default=4, help="validators (1: single)")
    p.add_argument("--kind", choices=sorted(SIGNERS), default="transfer",
                   help="value transfers or RecordStore.put calls")
    p.add_argument("--interval", type=positive_float, default=60.0,
                   help="seconds per reported interval")
    p.add_argument("--sample", type=positive_float, default=10.0,
                   help="seconds between RSS samples (for the slope)")
    p.add_argument("--poll-interval", type=positive_float, default=0.25,
                   help="seconds between eth_blockNumber polls of each node")
    p.add_argument("--drain-timeout", type=positive_float, default=60.0,
                   help="after the last send, wait this long for outstanding receipts")
    p.add_argument("--http-timeout", type=positive_float, default=30.0)
    p.add_argument("--start-timeout", type=positive_float, default=120.0)
    p.add_argument("--tracemalloc", type=positive_float, metavar="SECONDS",
                   help="every node writes a tracemalloc snapshot this often; the top growing "
                   "allocation sites are printed at the end (slows the nodes)")
    p.add_argument("--frames", type=_frames, default=25,
                   help="with --tracemalloc: frames kept per allocation; 0: trace nothing, "
                   "only count live objects per type (cheap enough for every node)")
    p.add_argument("--trace-node", metavar="NAME",
                   help="with --tracemalloc: only this node traces (e.g. center-1); tracing "
                   "every node of a busy machine can slow rounds past their timeouts")
    p.add_argument("--snapshot-dir", metavar="DIR",
                   help="with --tracemalloc: where to write the snapshots (default: in the "
                   "network's temporary directory; pass one with --keep-data or to keep them)")
    p.add_argument("--top", type=positive_int, default=15, help="sites listed per node")
    p.add_argument("--group", choices=("own", "lineno", "traceback", "filename"),
                   default="own", help="how to group allocations when comparing snapshots: "
                   "own = by the innermost frame in yilian's code (use --frames 25)")
    p.add_argument("--compare", metavar="DIR", type=Path,
                   help="only print the top growing sites of the snapshots in DIR, then exit")
    p.add_argument("--keep-data", action="store_true", help="keep the network directory")
    p.add_argument("--node-env", metavar="NAME:VAR=VALUE", type=_node_env, action="append",
                   default=[], help="set an environment variable for one node only (repeat "
                   "it; e.g. center-1:MALLOC_ARENA_MAX=2 to compare two settings in one run)")
    return p


def _node_env(text: str) -> tuple[str, str, str]:
    name, colon, rest = text.partition(":")
    var, eq, value = rest.partition("=")
    if not (name and colon and var and eq):
        raise argparse.ArgumentTypeError(f"expected NAME:VAR=VALUE, got {text!r}")
    return name, var, value


def node_env(pairs: Sequence[tuple[str, str, str]]) -> dict[str, dict[str, str]]:
    """``--node-env`` values as {node name: {variable: value}}."""
    env: dict[str, dict[str, str]] = {}
    for name, var, value in pairs:
        env.setdefault(name, {})[var] = value
    return env


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.compare is not None:
        print(diagnostics.compare_snapshots(args.compare, top=args.top, key=args.group))
        return 0
    return run_main(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
