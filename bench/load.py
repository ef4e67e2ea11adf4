"""Load generator: committed tx/s and commit latency of a node, against in-process py-evm.

``python -m yilian.bench.load`` pre-signs N ``RecordStore.put(key, data)`` calls (type-2,
zero fees, unique keys) with eth-account, sends them to a node as JSON-RPC batches of
``eth_sendRawTransaction`` and watches the chain for the blocks that commit them. In the
same run it measures the baseline: the node's own ``ChainCore.build`` in this process
(:mod:`yilian.bench.baseline`) building blocks from the *same* raw transactions (decoding
and sender recovery included) over a fresh store, from the same genesis. It prints both
rates and their ratio, then (``--load-fraction``) offers a rate-limited load at a fraction
of the baseline and reports the commit latency at that load.

Definitions:

* send time of a tx: when the HTTP request carrying it first started;
* commit time: when the poller (``eth_blockNumber`` every ``--poll-interval``) first saw a
  block that includes it;
* latency = commit time - send time;
* committed tx/s = committed txs / (last commit time - first send time).

By default the bench starts a fresh single-validator network in a temporary directory
(``yilian.cli.launcher.up``) and always stops it afterwards; ``--rpc URL`` targets a
running node instead. Exit status: 0 when every accepted transaction committed with a
successful receipt (and, with ``--check``, the goals were met), 1 otherwise, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from yilian.bench.baseline import run_baseline
from yilian.bench.command import (
    BenchError,
    HelpFormatter,
    add_verify_and_json_args,
    fraction,
    log,
    positive_float,
    positive_int,
    report_main,
)
from yilian.bench.network import pid_from_file, start_network, stop_network
from yilian.bench.phase import run_measured
from yilian.bench.report import Report, format_report
from yilian.bench.rpc import node_info
from yilian.bench.transactions import (
    MAX_SENDERS,
    dev_senders,
    senders_from_file,
    sign_load,
)


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
            all_senders = dev_senders()
        else:
            rpc_url = args.rpc
            all_senders = (senders_from_file(args.network_file) if args.network_file else
                           dev_senders())
            node_pid = args.node_pid or (pid_from_file(args.network_file, rpc_url)
                                         if args.network_file else None)
        if args.senders > len(all_senders):
            raise BenchError(f"--senders {args.senders}: only {len(all_senders)} accounts "
                             "are available")
        senders = all_senders[:args.senders]
        chain_id, nonces = asyncio.run(node_info(rpc_url, senders, args.http_timeout))
        per_sender = math.ceil(args.txs / len(senders))
        notes = []
        if per_sender > 1024:
            notes.append(f"{per_sender} transactions per sender exceed the node's default "
                         "nonce gap (1024): expect nonce_too_high retries; use more --senders")
        txs = sign_load(senders, nonces, args.txs, chain_id)

        node = run_measured(args, rpc_url, txs, label="saturation" if not args.rate
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
                node_pid=node_pid)
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
                _, nonces2 = asyncio.run(node_info(rpc_url, senders, args.http_timeout))
                txs2 = sign_load(senders, nonces2, args.load_txs or args.txs, chain_id)
                report.loaded = run_measured(args, rpc_url, txs2, label="loaded", rate=rate,
                                             node_pid=node_pid)
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


_EPILOG = """\
definitions:
  send time     when the HTTP request carrying the transaction first started
  commit time   when the poller (eth_blockNumber every --poll-interval, then
                eth_getBlockByNumber(n, false)) first saw a block holding it
  latency       commit time - send time
  tx/s          committed transactions / (last commit time - first send time)
  baseline      py-evm alone, same process: decode the same raw transactions,
                recover their senders and build blocks with the node's
                ChainCore.build over a fresh store in a temporary directory,
                from the same local genesis
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
        formatter_class=HelpFormatter,
    )
    target = p.add_argument_group("target node")
    target.add_argument("--rpc", metavar="URL",
                        help="JSON-RPC URL of a running node to load instead of starting a "
                        "fresh local network (e.g. http://127.0.0.1:8545/rpc)")
    target.add_argument("--network-file", metavar="PATH", type=Path,
                        help="with --rpc: network.json whose 'accounts' (address, "
                        "privateKey) sign the load; default: the local development accounts")
    target.add_argument("--node-pid", type=positive_int, default=None,
                        help="with --rpc: pid of the node process, to report its CPU time "
                        "(default: from --network-file when the node runs on this machine)")
    target.add_argument("--keep-data", action="store_true",
                        help="keep the temporary network directory (node log, chain data)")
    load = p.add_argument_group("load")
    load.add_argument("-n", "--txs", type=positive_int, default=4000,
                      help="transactions to pre-sign and send in the main phase")
    load.add_argument("--senders", type=positive_int, default=8,
                      help=f"sending accounts (at most {MAX_SENDERS} on the local network); "
                      "each gets txs/senders consecutive nonces, starting from its "
                      "eth_getTransactionCount(pending)")
    load.add_argument("--concurrency", type=positive_int, default=4,
                      help="HTTP requests in flight at once")
    load.add_argument("--batch", type=positive_int, default=50,
                      help="eth_sendRawTransaction calls per JSON-RPC batch request")
    load.add_argument("--rate", type=positive_float, default=None,
                      help="offered load in tx/s for the main phase (open loop: batches "
                      "leave on a fixed schedule); default: saturation, as fast as the node "
                      "answers")
    load.add_argument("--load-fraction", type=fraction, default=0.8,
                      help="after the main phase and the baseline, run a rate-limited phase "
                      "at this fraction of the baseline tx/s (of the node's saturation tx/s "
                      "with --skip-baseline) and report its latency; 0 skips it")
    load.add_argument("--load-txs", type=positive_int, default=None,
                      help="transactions in the rate-limited phase (default: --txs)")
    baseline = p.add_argument_group("baseline")
    baseline.add_argument("--skip-baseline", action="store_true",
                          help="do not measure in-process py-evm block building")
    baseline.add_argument("--baseline-block-txs", type=positive_int, default=None,
                          help="transactions per baseline block (default: the local "
                          "genesis' maxTxPerBlock, 2000)")
    mon = p.add_argument_group("measurement and output")
    mon.add_argument("--poll-interval", type=positive_float, default=0.05,
                     help="seconds between eth_blockNumber polls that detect commits")
    mon.add_argument("--commit-timeout", type=positive_float, default=30.0,
                     help="give up when none of the outstanding transactions commits for "
                     "this many seconds")
    mon.add_argument("--http-timeout", type=positive_float, default=60.0,
                     help="timeout of one HTTP request, in seconds")
    add_verify_and_json_args(mon)
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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return report_main(lambda: run(args), format_report, args.json,
                       passed=lambda report: report.ok
                       and (not args.check or report.goals_met))


if __name__ == "__main__":
    sys.exit(main())
