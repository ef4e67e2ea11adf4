"""Consortium benchmark: committed tx/s, block interval and commit latency of 1, 4 and 7
validators on this machine, in one run.

``python -m yilian.bench.consortium`` starts a fresh local network of each size in turn
(``yilian.cli.launcher.up``: one node is a single validator, more are a BFT consortium of
that many validators on 127.0.0.1), loads it at saturation with the machinery of
:mod:`yilian.bench.load` - pre-signed ``RecordStore.put`` calls sent as JSON-RPC batches
of ``eth_sendRawTransaction``, here spread round-robin over every node's RPC URL, commits
detected by polling the first node's blocks - and stops it (always) before the next one
starts. It prints, per network: committed tx/s at saturation, the mean block interval,
tx/block, commit latency p50/p99/max, the ratio to the single validator's tx/s measured in
the same run, the CPU time of the node processes, and how the blocks were decided
(proposers, empty blocks, rounds > 0 from the commit certificates). Then (``--load-fraction``,
default 0.5) it offers a rate-limited load at that fraction of the network's saturation tx/s
and reports the commit latency there: at saturation every transaction is sent at once, so
that latency is mostly queueing behind earlier blocks.

Definitions are those of ``python -m yilian.bench.load`` (see its ``--help``): latency is
commit time (first seen by the poller) - send time (the HTTP request started); tx/s is
committed txs / (last commit seen - first send). Exit status: 0 when every network
committed every transaction with status 1, 1 otherwise, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from yilian.bench import command
from yilian.bench.command import BenchError, log, report_main
from yilian.bench.measure import CpuUsage, PhaseResult, no_nan, phase_json
from yilian.bench.network import start_network, stop_network
from yilian.bench.phase import run_measured
from yilian.bench.report import phase_details
from yilian.bench.rpc import Rpc, node_info
from yilian.bench.transactions import MAX_SENDERS, PreSigned, Sender, sign_load
from yilian.cli import launcher
from yilian.network_configs.local import LOCAL_CHAIN_ID, dev_accounts

CPU_ENV = "YILIAN_NODE_CPUS"  # cli/runner.py: "all" lets a node's threads use every CPU
DEFAULT_LOAD_TXS = 500
MESH_TIMEOUT = 30.0  # seconds to wait for every node to connect to every other one


@dataclass
class BlockInfo:
    number: int
    txs: int
    proposer: str  # node name (or the coinbase address when unknown)
    round: int | None  # from the commit certificate; None on a single validator


@dataclass
class NetworkResult:
    nodes: int
    names: list[str]
    cpus_allowed: list[str]  # each node process' CPU affinity (/proc/PID/status)
    startup_seconds: float  # launcher.up until every node is connected to every other
    saturation: PhaseResult | None = None
    loaded: PhaseResult | None = None
    ratio: float | None = None  # saturation tx/s over the single validator's
    blocks: list[BlockInfo] = field(default_factory=list)  # every block of the phase
    heads_agree: bool | None = None  # every node holds the phase's last block, same hash
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.nodes} validator" + ("" if self.nodes == 1 else "s")

    @property
    def empty_blocks(self) -> int:
        return sum(1 for b in self.blocks if not b.txs)

    @property
    def late_rounds(self) -> int:
        """Blocks decided in a round above 0 (a proposal missed its timeout, or failed)."""
        return sum(1 for b in self.blocks if b.round)

    @property
    def ok(self) -> bool:
        return (self.error is None and self.saturation is not None and self.saturation.ok
                and (self.loaded is None or self.loaded.ok) and self.heads_agree is not False)


@dataclass
class ConsortiumReport:
    txs: int
    senders: int
    batch: int
    concurrency: int
    node_cpus: str
    networks: list[NetworkResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.networks) and all(n.ok for n in self.networks)

    def to_json(self) -> dict[str, Any]:
        nets = []
        for n in self.networks:
            d = asdict(n)
            d.update(saturation=phase_json(n.saturation), loaded=phase_json(n.loaded),
                     empty_blocks=n.empty_blocks, late_rounds=n.late_rounds, ok=n.ok,
                     notes=n.notes + _interference(n))
            nets.append(d)
        return no_nan({"txs": self.txs, "senders": self.senders, "batch": self.batch,
                             "concurrency": self.concurrency, "node_cpus": self.node_cpus,
                             "networks": nets, "ok": self.ok})


# -- transactions ------------------------------------------------------------------------------


def _next_nonces(start: Sequence[int], count: int) -> list[int]:
    """Each sender's next nonce after ``presign(senders, start, count)``."""
    k = len(start)
    return [n + count // k + (1 if s < count % k else 0) for s, n in enumerate(start)]


@dataclass
class _Signed:
    """Transactions signed once for every (fresh, identical) network of the run."""

    chain_id: int
    start: list[int]
    saturation: list[PreSigned]
    loaded: list[PreSigned] | None


def _sign_all(senders: Sequence[Sender], chain_id: int, start: Sequence[int], txs: int,
              load_txs: int | None) -> _Signed:
    sat = sign_load(senders, start, txs, chain_id)
    loaded = (sign_load(senders, _next_nonces(start, txs), load_txs, chain_id)
              if load_txs else None)
    return _Signed(chain_id, list(start), sat, loaded)


# -- one network -----------------------------------------------------------------------------


def _cpus_allowed(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def _peer_count(client: httpx.Client, url: str) -> int | None:
    """Consensus peers connected to the node at ``url`` (its /healthz), None if unknown."""
    try:
        consensus = client.get(url.rsplit("/rpc", 1)[0] + "/healthz").json().get("consensus")
        seen = (consensus or {}).get("peers")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return seen if isinstance(seen, int) else None


def _wait_connected(urls: Sequence[str], peers: int, timeout: float) -> list[int | None]:
    """Wait until every node's /healthz reports ``peers`` connected consensus peers, at most
    ``timeout`` seconds; return each node's peer count (all ``peers`` unless it timed out)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        for url in urls:
            while True:
                seen = _peer_count(client, url)
                if seen is not None and seen >= peers:
                    break
                if time.monotonic() > deadline:
                    return [_peer_count(client, u) for u in urls]
                time.sleep(0.1)
    return [peers] * len(urls)


@contextmanager
def _node_cpus(mode: str) -> Iterator[None]:
    """With ``all``, nodes started in this block let their threads use every CPU."""
    previous = os.environ.get(CPU_ENV)
    if mode == "all":
        os.environ[CPU_ENV] = "all"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(CPU_ENV, None)
        else:
            os.environ[CPU_ENV] = previous


def _proposer_names(network: dict[str, Any]) -> dict[str, str]:
    """Coinbase address (lowercase hex) of each node's blocks -> node name."""
    out = {}
    for entry in network["nodes"]:
        try:
            config = json.loads((Path(entry["home"]) / "config.json").read_text())
            out[str(config["proposer"]).lower()] = str(entry["name"])
        except (OSError, ValueError, KeyError):
            continue
    return out


async def _census(url: str, first: int, last: int, names: dict[str, str], *,
                  http_timeout: float) -> list[BlockInfo]:
    """Size, proposer and deciding round of blocks ``first`` .. ``last``."""
    if last < first:
        return []
    rpc = Rpc(url, connections=1, timeout=http_timeout)
    try:
        numbers = list(range(first, last + 1))
        blocks = await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        certs = await rpc.batch([("yilian_getCommitCertificate", [hex(n)]) for n in numbers])
    finally:
        await rpc.close()
    out = []
    for n, block, cert in zip(numbers, blocks, certs, strict=True):
        if block is None:
            raise BenchError(f"block {n} vanished from {url}")
        miner = str(block.get("miner", "")).lower()
        out.append(BlockInfo(number=n, txs=len(block["transactions"]),
                             proposer=names.get(miner, miner),
                             round=int(cert["round"], 16) if cert else None))
    return out


async def _heads_agree(urls: Sequence[str], number: int, *, wait: float,
                       http_timeout: float) -> bool:
    """Whether every node holds block ``number`` with the same hash (waits up to ``wait``)."""
    rpcs = [Rpc(u, connections=1, timeout=http_timeout) for u in urls]
    try:
        deadline = time.monotonic() + wait
        while True:
            blocks = await asyncio.gather(*(r.call("eth_getBlockByNumber", [hex(number), False])
                                            for r in rpcs))
            if all(b is not None for b in blocks):
                return len({b["hash"] for b in blocks}) == 1
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
    finally:
        for r in rpcs:
            await r.close()


def run_network(args: argparse.Namespace, nodes: int, signed: _Signed,
                senders: Sequence[Sender]) -> NetworkResult:
    """Start a fresh network of ``nodes`` validators, measure it, always stop it."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"yilian-consortium-{nodes}-"))
    result = NetworkResult(nodes=nodes, names=[], cpus_allowed=[], startup_seconds=math.nan)
    stopped = False
    try:
        log(f"{result.label}: starting a local network in {data_dir}")
        started = time.perf_counter()
        with _node_cpus(args.node_cpus):
            network = start_network(data_dir, timeout=args.start_timeout, nodes=nodes)
        urls = [str(e["rpc"]) for e in network["nodes"]]
        pids = [int(e["pid"]) for e in network["nodes"]]
        result.names = [str(e["name"]) for e in network["nodes"]]
        if nodes > 1:
            counts = _wait_connected(urls, nodes - 1, min(args.start_timeout, MESH_TIMEOUT))
            if any(c != nodes - 1 for c in counts):
                result.notes.append(
                    f"the p2p mesh was incomplete after {MESH_TIMEOUT:.0f} s (peers per node: "
                    + ", ".join(f"{name} {c}" for name, c in zip(result.names, counts,
                                                                  strict=True))
                    + "); measured anyway")
        result.startup_seconds = time.perf_counter() - started
        result.cpus_allowed = [_cpus_allowed(pid) for pid in pids]
        log(f"{result.label}: up in {result.startup_seconds:.1f} s")

        chain_id, nonces = asyncio.run(node_info(urls[0], senders, args.http_timeout))
        if chain_id != signed.chain_id or nonces != signed.start:
            result.notes.append("this network's chain id or nonces differ from the "
                                "pre-signed ones: re-signed its transactions")
            signed = _sign_all(senders, chain_id, nonces, args.txs, _load_txs(args))

        sat = result.saturation = run_measured(
            args, urls[0], signed.saturation, label=f"{result.label} saturation", rate=None,
            node_pid=pids, send_urls=urls)
        if sat.start_block is not None and sat.blocks:
            last = max(b.number for b in sat.blocks)
            result.blocks = asyncio.run(_census(urls[0], sat.start_block + 1, last,
                                                _proposer_names(network),
                                                http_timeout=args.http_timeout))
            result.heads_agree = asyncio.run(_heads_agree(urls, last, wait=10.0,
                                                          http_timeout=args.http_timeout))
        if sat.timed_out:
            result.notes.append(sat.timed_out + f"; node logs in {data_dir}/*/node.log")
        elif args.load_fraction and signed.loaded and sat.tps > 0:
            result.loaded = run_measured(
                args, urls[0], signed.loaded, label=f"{result.label} loaded",
                rate=args.load_fraction * sat.tps, node_pid=pids, send_urls=urls)
        return result
    except (BenchError, launcher.LauncherError) as exc:
        result.error = str(exc)
        log(f"{result.label}: error: {exc}")
        return result
    finally:
        try:
            stop_network(data_dir)
            stopped = True
            log(f"{result.label}: network stopped")
        except Exception as exc:
            log(f"WARNING: could not stop the network in {data_dir}: {exc}")
            result.notes.append(f"could not stop the network in {data_dir}: {exc}")
        if stopped and not args.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
        elif args.keep_data:
            result.notes.append(f"data and node logs kept in {data_dir}")


def _load_txs(args: argparse.Namespace) -> int | None:
    """Transactions of the rate-limited phase (None: no such phase)."""
    if not args.load_fraction:
        return None
    return int(args.load_txs or min(args.txs, DEFAULT_LOAD_TXS))


def run(args: argparse.Namespace) -> ConsortiumReport:
    """Measure every network size of ``args.nodes`` in turn; return the report."""
    senders = [Sender(a.address, a.private_key) for a in dev_accounts(MAX_SENDERS)]
    senders = senders[:args.senders]
    signed = _sign_all(senders, LOCAL_CHAIN_ID, [0] * len(senders), args.txs, _load_txs(args))
    report = ConsortiumReport(txs=args.txs, senders=len(senders), batch=args.batch,
                              concurrency=args.concurrency, node_cpus=args.node_cpus)
    single: float | None = None
    for nodes in args.nodes:
        net = run_network(args, nodes, signed, senders)
        report.networks.append(net)
        tps = net.saturation.tps if net.saturation is not None and net.saturation.ok else None
        if nodes == 1 and tps:
            single = tps
    for net in report.networks:
        if single and net.saturation is not None and net.saturation.ok:
            net.ratio = net.saturation.tps / single
    return report


# -- report ------------------------------------------------------------------------------------


def _interference(n: NetworkResult) -> list[str]:
    out = []
    for name, p in (("saturation", n.saturation), ("loaded", n.loaded)):
        cpu = p.cpu if p is not None else None
        cores = cpu.others_cores if cpu is not None else None
        if cpu is not None and cores is not None and cores > 0.25:
            out.append(f"other processes kept {cores:.2f} of {cpu.cpus} CPUs busy during the "
                       f"{name} phase: its figures are disturbed; rerun on a quiet machine")
    return out


def _f(value: float | None, fmt: str, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:{fmt}}{unit}"


def _per_node_cpu(n: NetworkResult, cpu: CpuUsage | None) -> str | None:
    if cpu is None or not cpu.per_node or not cpu.wall:
        return None
    parts = [f"{name} {_f(c, '.1f', ' s')} [cpu {allowed}]"
             for name, c, allowed in zip(n.names, cpu.per_node, n.cpus_allowed, strict=False)]
    return "  CPU per node: " + ", ".join(parts)


def _blocks_line(n: NetworkResult) -> str | None:
    if not n.blocks:
        return None
    by = Counter(b.proposer for b in n.blocks if b.txs)
    proposers = ", ".join(f"{name} x{k}" for name, k in sorted(by.items()))
    rounds = Counter(b.round for b in n.blocks if b.round is not None)
    rounds_txt = ("; deciding rounds " + " ".join(f"r{r}:{k}" for r, k in
                                                 sorted(rounds.items())) if rounds else "")
    return (f"  blocks #{n.blocks[0].number}..#{n.blocks[-1].number}: {len(n.blocks)} "
            f"({n.empty_blocks} empty, {n.late_rounds} decided after round 0{rounds_txt}); "
            f"proposers of non-empty blocks: {proposers}")


def _headline(n: NetworkResult, p: PhaseResult) -> str:
    ratio = f", {n.ratio:.2f} x 1 validator" if n.ratio is not None and n.nodes != 1 else ""
    return (f"{n.label}: {p.committed} tx committed in {p.commit_seconds:.2f} s = "
            f"{p.tps:.0f} tx/s{ratio}; block interval {_f(p.mean_block_interval, '.2f', ' s')}"
            f", {_f(p.tx_per_block, '.0f')} tx/block; latency p50 {p.latency.p50:.2f} s "
            f"p99 {p.latency.p99:.2f} s max {p.latency.max:.2f} s")


def _loaded_cells(q: PhaseResult | None) -> str:
    if q is None:
        return f"{'-':>8} {'-':>7} {'-':>7}"
    rate = _f(q.offered_rate, '.0f', ' tx/s')
    return (f"{rate:>8} {_f(q.latency.p50, '.2f', ' s'):>7} "
            f"{_f(q.latency.p99, '.2f', ' s'):>7}")


def format_report(r: ConsortiumReport) -> str:
    lines = [f"consortium benchmark: {r.txs} RecordStore.put txs per network from {r.senders} "
             f"senders, http batch {r.batch}, concurrency {r.concurrency}, batches round-robin "
             f"over every node's RPC, commits seen on the first node; node CPUs: "
             f"{r.node_cpus}; {os.cpu_count()} CPUs"]
    for n in r.networks:
        p = n.saturation
        if p is None:
            lines.append(f"{n.label}: FAILED: {n.error}")
            lines += [f"  note: {note}" for note in n.notes]
            continue
        lines.append(_headline(n, p))
        lines.append(f"  startup {n.startup_seconds:.1f} s; "
                     + ("every node holds the last block with the same hash"
                        if n.heads_agree else "NODES DISAGREE on the last block"
                        if n.heads_agree is False else "heads not compared"))
        lines += phase_details(p)
        for line in (_per_node_cpu(n, p.cpu), _blocks_line(n)):
            if line:
                lines.append(line)
        if n.loaded is not None:
            q = n.loaded
            lines.append(f"  at {q.offered_rate or 0:.0f} tx/s offered: {q.committed} tx at "
                         f"{q.tps:.0f} tx/s; latency p50 {q.latency.p50:.2f} s p99 "
                         f"{q.latency.p99:.2f} s max {q.latency.max:.2f} s; block interval "
                         f"{_f(q.mean_block_interval, '.2f', ' s')}, "
                         f"{_f(q.tx_per_block, '.0f')} tx/block")
            lines += ["  " + line for line in phase_details(q)]
            line = _per_node_cpu(n, q.cpu)
            if line:
                lines.append("  " + line)
        if n.error:
            lines.append(f"  ERROR: {n.error}")
        lines += [f"  note: {note}" for note in n.notes + _interference(n)]
    lines.append("summary: saturation (all transactions sent at once), and commit latency "
                 "at the rate-limited load")
    lines.append(f"  {'validators':>10} {'tx/s':>6} {'ratio':>6} {'interval':>9} "
                 f"{'tx/block':>8} {'p50':>7} {'p99':>7} {'max':>7} {'node CPU/tx':>12} "
                 f"{'empty':>5} {'round>0':>7} | {'load':>8} {'p50':>7} {'p99':>7}")
    for n in r.networks:
        p = n.saturation
        if p is None:
            lines.append(f"  {n.nodes:>10} failed")
            continue
        cpu_tx = (p.cpu.node * 1000 / p.committed
                  if p.cpu is not None and p.cpu.node and p.committed else None)
        lines.append(
            f"  {n.nodes:>10} {p.tps:>6.0f} {_f(n.ratio, '.2f'):>6} "
            f"{_f(p.mean_block_interval, '.2f', ' s'):>9} {_f(p.tx_per_block, '.0f'):>8} "
            f"{_f(p.latency.p50, '.2f', ' s'):>7} {_f(p.latency.p99, '.2f', ' s'):>7} "
            f"{_f(p.latency.max, '.2f', ' s'):>7} {_f(cpu_tx, '.2f', ' ms'):>12} "
            f"{n.empty_blocks:>5} {n.late_rounds:>7} | {_loaded_cells(n.loaded)}"
            + ("" if n.ok else "  NOT OK"))
    return "\n".join(lines)


# -- command line ------------------------------------------------------------------------------


def _node_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated counts, got {text}") from exc
    if not counts or any(c < 1 for c in counts):
        raise argparse.ArgumentTypeError(f"node counts must be positive integers, got {text}")
    return counts


_EPILOG = """\
definitions (as in python -m yilian.bench.load):
  send time      when the HTTP request carrying the transaction first started
  commit time    when the poller (on the first node) first saw a block holding it
  latency        commit time - send time; at saturation every transaction is sent
                 at once, so it includes queueing behind earlier blocks; the
                 rate-limited phase (--load-fraction) shows it without that
  tx/s           committed transactions / (last commit time - first send time)
  block interval mean time between the blocks holding the phase's transactions
  ratio          a network's tx/s / the 1-validator network's tx/s, same run
  CPU            CPU seconds of all node processes, of this process and of every
                 other process on the machine during the phase (from /proc); per
                 node with the CPUs it may run on
  blocks         from eth_getBlockByNumber and yilian_getCommitCertificate on the
                 first node: empty blocks and blocks decided after round 0
Each network is fresh (its own temporary directory, genesis and keys) and is stopped
before the next one starts, also on errors and Ctrl-C.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m yilian.bench.consortium",
        description=(
            "Measure committed tx/s at saturation, block interval and commit latency of a "
            "single validator and of BFT consortia of several validators on this machine, in "
            "one run, and each consortium's tx/s relative to the single validator's."),
        epilog=_EPILOG, formatter_class=command.HelpFormatter)
    p.add_argument("--nodes", type=_node_counts, default=[1, 4, 7], metavar="N,N,...",
                   help="network sizes to measure, in order (1 = single validator) "
                   "(default: 1,4,7)")
    p.add_argument("-n", "--txs", type=command.positive_int, default=2000,
                   help="transactions per network at saturation")
    p.add_argument("--senders", type=command.positive_int, default=8,
                   help=f"sending accounts (at most {MAX_SENDERS})")
    p.add_argument("--batch", type=command.positive_int, default=50,
                   help="eth_sendRawTransaction calls per JSON-RPC batch request")
    p.add_argument("--concurrency", type=command.positive_int, default=4,
                   help="HTTP requests in flight at once (over all nodes)")
    p.add_argument("--load-fraction", type=command.fraction, default=0.5,
                   help="after each saturation phase, also offer this fraction of the "
                   "network's saturation tx/s (open loop) and report the commit latency "
                   "there, without the queueing of saturation; 0 skips it")
    p.add_argument("--load-txs", type=command.positive_int, default=None,
                   help="transactions in that rate-limited phase (default: --txs, at most "
                   f"{DEFAULT_LOAD_TXS})")
    p.add_argument("--node-cpus", choices=("pinned", "all"), default="pinned",
                   help="pinned: each node process keeps to one CPU chosen by its name "
                   "(the node's default); all: node threads may use every CPU "
                   f"({CPU_ENV}=all)")
    p.add_argument("--poll-interval", type=command.positive_float, default=0.05,
                   help="seconds between eth_blockNumber polls that detect commits")
    p.add_argument("--commit-timeout", type=command.positive_float, default=60.0,
                   help="give up on a network when none of its outstanding transactions "
                   "commits for this many seconds")
    p.add_argument("--http-timeout", type=command.positive_float, default=60.0,
                   help="timeout of one HTTP request, in seconds")
    p.add_argument("--start-timeout", type=command.positive_float, default=90.0,
                   help="seconds to wait for a network's nodes to answer; then at most "
                   f"{MESH_TIMEOUT:.0f} s more for each to connect to all the others (if they do "
                   "not, the network is measured anyway, with a note)")
    p.add_argument("--keep-data", action="store_true",
                   help="keep each network's temporary directory (node logs, chain data)")
    command.add_verify_and_json_args(p)
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.senders > MAX_SENDERS:
        parser.error(f"--senders: the local network authorises {MAX_SENDERS} accounts")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return report_main(lambda: run(args), format_report, args.json)


if __name__ == "__main__":
    sys.exit(main())
