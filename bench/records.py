"""Records benchmark: published records/s and grant-checked reads/s on a 4-center network.

``python -m yilian.bench.records`` generates and starts a fresh local consortium of four
centers on 127.0.0.1 (``yilian network init`` + ``yilian up``), then measures, through the
SDK exactly as users call it:

1. **publish**: every center publishes records about one enterprise through its own node
   (``Center.publish_record``: validation, encryption under a fresh data key, key wrapping
   for custodian and owner, ``Records.publish`` committed). A call returns when its block
   is final.
2. **read**: a bank reads those records through center B's node under the enterprise's
   grant (``Grantee.read``: B forwards the key request to the record's custodian, which
   checks the grant, commits the access receipt, and re-wraps the key; the SDK checks the
   digest and decrypts). A call returns when the receipt is final and the plaintext is
   verified. With ``--read-batch N`` each concurrent call reads N records of one custodian
   in one key request (``Grantee.read_many``: one receipt transaction for the N reads);
   rates and CPU are then per read, not per call.

Each is run in the same run sequentially (one call at a time: the baseline, which is
dominated by waiting for a final block) and with each ``--concurrency`` of callers, and the
report prints the rates, their ratio to the baseline, the latency p50/p99 and the **node CPU
per call**: CPU seconds of the four node processes together (from /proc) over the phase,
divided by the calls that succeeded, the figure steadiest on a shared machine.

``--views evm,reader`` runs the whole benchmark once per mode, each on a fresh network
whose nodes get ``YILIAN_VIEWS`` (views through the interpreter, or the storage readers),
and prints both side by side. The network is always stopped at the end. Exit status 0 when
every call succeeded.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yilian.bench.measure import CpuMeter, percentile
from yilian.cli import launcher
from yilian.network_configs.generate import init_network
from yilian.protocol import standard
from yilian.sdk.center import Center
from yilian.sdk.client import Client
from yilian.sdk.enterprise import Enterprise
from yilian.sdk.grantee import Grantee

ENTERPRISE = "914403001922038216"
TYPES = list(standard.RecordType)


@dataclass
class Phase:
    label: str
    calls: int
    concurrency: int
    seconds: float
    latencies: list[float]
    errors: int
    node_cpu: float | None = None  # CPU seconds of all node processes over the phase
    per_call: int = 1  # operations (publications, reads) per call: a batch read has several

    @property
    def done(self) -> int:
        """Operations of the calls that succeeded."""
        return (self.calls - self.errors) * self.per_call

    @property
    def rate(self) -> float:
        """Operations per second."""
        return self.done / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_call(self) -> float | None:
        """Node CPU (all nodes) per operation, in ms."""
        return None if self.node_cpu is None or not self.done else 1000 * self.node_cpu / self.done

    def line(self) -> str:
        lat = sorted(self.latencies)
        cpu = self.cpu_ms_per_call
        batch = f" x{self.per_call}" if self.per_call > 1 else ""
        return (f"  {self.label:<30} {self.calls:>5} calls{batch}  conc {self.concurrency:>3}  "
                f"{self.rate:8.1f}/s  p50 {percentile(lat, 50):6.3f} s  "
                f"p99 {percentile(lat, 99):6.3f} s  node CPU "
                f"{'-' if cpu is None else f'{cpu:.1f}'} ms/op  errors {self.errors}")


def _run(label: str, work: Sequence[Callable[[], Any]], concurrency: int,
         pids: Sequence[int] = (), per_call: int = 1) -> Phase:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one(fn: Callable[[], Any]) -> None:
        nonlocal errors
        t0 = time.monotonic()
        try:
            fn()
        except Exception as exc:
            with lock:
                errors += 1
                if errors <= 3:
                    print(f"    error in {label}: {exc!r}"[:300], file=sys.stderr)
            return
        with lock:
            latencies.append(time.monotonic() - t0)

    meter = CpuMeter(list(pids)) if pids else None
    start = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, work))
    seconds = time.monotonic() - start
    node_cpu = meter.stop().node if meter is not None else None
    return Phase(label, len(work), concurrency, seconds, latencies, errors, node_cpu,
                 per_call)


def run(args: argparse.Namespace) -> int:
    failed = 0
    results: dict[str, list[Phase]] = {}
    for views in args.views:
        phases: list[Phase] = []
        failed += run_once(args, views, phases)
        results[views] = phases
    if len(results) > 1:
        print("side by side (node CPU ms per call, calls/s):")
        modes = list(results)
        for i, phase in enumerate(results[modes[0]]):
            cells = []
            for mode in modes:
                p = results[mode][i]
                cpu = p.cpu_ms_per_call
                cells.append(f"{mode} {'-' if cpu is None else f'{cpu:6.1f}'} ms "
                             f"{p.rate:6.1f}/s")
            print(f"  {phase.label:<34} " + "   ".join(cells))
    return 0 if failed == 0 else 1


def run_once(args: argparse.Namespace, views: str, phases: list[Phase]) -> int:
    """One whole benchmark on a fresh network whose nodes run views as ``views``;
    appends its phases to ``phases``; returns the number of failed calls."""
    tmp = Path(tempfile.mkdtemp(prefix="yilian-bench-records-"))
    data = tmp / "net"
    try:
        init_network(data, centers=4, suite=args.suite, base_port=launcher.free_port_range(8))

        def spawner(entry: dict[str, Any]) -> int:
            return launcher.spawn(entry, env={"YILIAN_VIEWS": views})

        net = launcher.up(data, spawner=spawner)
        pids = [int(n["pid"]) for n in net["nodes"]]
        api = [n["api"] for n in net["nodes"]]
        members = {m["role"]: m for m in net["members"] if m["id"] != "9144030071526726XG"}
        center_keys = ["0x" + (Path(n["home"]) / "account_key").read_text().strip()
                       for n in net["nodes"]]
        local = threading.local()

        def center(i: int) -> Center:
            c = getattr(local, f"c{i}", None)
            if c is None:
                c = Center(Client(api[i], center_keys[i]))
                setattr(local, f"c{i}", c)
            return c

        bank_m = members["financial"]

        def bank() -> Grantee:
            g = getattr(local, "bank", None)
            if g is None:
                g = Grantee(Client(api[1], bank_m["privateKey"],
                                   enc_private_key=bank_m["encPrivateKey"]))
                local.bank = g
            return g

        time.sleep(2.0)  # let the four centers connect
        published: list[tuple[int, str]] = []  # (custodian center, record id)
        plock = threading.Lock()

        def publish(i: int, n: int) -> Callable[[], Any]:
            def fn() -> None:
                rtype = TYPES[n % len(TYPES)]
                out = center(i % 4).publish_record(
                    rtype, ENTERPRISE, standard.example_record(rtype, ENTERPRISE),
                    owner="subject", client_id=f"bench-{i}-{n}")
                with plock:
                    published.append((i % 4, out.record_id))
            return fn

        print(f"yilian records benchmark: 4 centers, suite {args.suite}, views {views}, "
              f"{args.records} records, {args.reads} reads, concurrency "
              f"{','.join(map(str, args.concurrency))}")
        seq_pub = _run("publish, sequential (baseline)",
                       [publish(0, n) for n in range(args.baseline)], 1, pids)
        print(seq_pub.line())
        phases.append(seq_pub)
        par_pubs = []
        for k, conc in enumerate(args.concurrency):
            par_pubs.append(_run(f"publish, 4 centers, {conc} callers",
                                 [publish(n % 4, 10_000 * (k + 1) + n)
                                  for n in range(args.records)], conc, pids))
            print(par_pubs[-1].line())
        phases.extend(par_pubs)
        ent_m = next(m for m in net["members"] if m["id"] == ENTERPRISE)
        grant = Enterprise(Client(api[1], ent_m["privateKey"]), ENTERPRISE).grant(
            bank_m["id"], types=TYPES, purpose="benchmark", max_reads=2**32 - 1,
            valid_for_s=3600)
        gid = int(grant["grant_id"])
        records = [rid for _, rid in published]
        by_center = [[rid for c, rid in published if c == i] for i in range(4)]
        batch = max(1, min(args.read_batch, *map(len, by_center)))

        def read(n: int) -> Callable[[], Any]:
            def fn() -> None:
                bank().read(records[n % len(records)], gid)
            return fn

        def read_many(n: int) -> Callable[[], Any]:
            """``batch`` records of one custodian in one key request (Grantee.read_many)."""
            mine = by_center[n % 4]
            start = (n // 4) * batch
            picks = [mine[(start + j) % len(mine)] for j in range(batch)]

            def fn() -> None:
                bank().read_many([(rid, gid) for rid in picks])
            return fn

        seq_read = _run("read via B, sequential (baseline)",
                        [read(n) for n in range(args.baseline)], 1, pids)
        print(seq_read.line())
        phases.append(seq_read)
        par_reads = []
        for conc in args.concurrency:
            if batch == 1:
                par_reads.append(_run(f"read via B, {conc} callers",
                                      [read(n) for n in range(args.reads)], conc, pids))
            else:
                par_reads.append(_run(f"read via B, {conc} callers, batch {batch}",
                                      [read_many(n) for n in range(max(1, args.reads // batch))],
                                      conc, pids, per_call=batch))
            print(par_reads[-1].line())
        phases.extend(par_reads)
        for pub, rd in zip(par_pubs, par_reads, strict=True):
            print(f"views {views}, {pub.concurrency} callers: published records/s "
                  f"{pub.rate:.1f} (x{pub.rate / max(seq_pub.rate, 1e-9):.2f} the sequential "
                  f"baseline), grant-checked reads/s {rd.rate:.1f} "
                  f"(x{rd.rate / max(seq_read.rate, 1e-9):.2f})")
        return sum(p.errors for p in (seq_pub, *par_pubs, seq_read, *par_reads))
    finally:
        if (data / launcher.NETWORK_FILE).exists():
            launcher.down(data)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers, e.g. 32,64") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least one number >= 1")
    return values


def _views_list(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values or any(v not in ("reader", "evm") for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: use reader, evm or evm,reader")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m yilian.bench.records",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--records", type=int, default=400, help="records published concurrently")
    p.add_argument("--reads", type=int, default=400, help="grant-checked reads, concurrently")
    p.add_argument("--baseline", type=int, default=20,
                   help="calls of each sequential baseline phase")
    p.add_argument("--concurrency", type=_int_list, default=[32],
                   help="concurrent callers; a comma-separated list runs each (e.g. 32,64)")
    p.add_argument("--views", type=_views_list, default=["reader"],
                   help="how the nodes answer contract views: reader (storage readers, the "
                        "default), evm (the interpreter), or evm,reader for both, each on a "
                        "fresh network, side by side")
    p.add_argument("--read-batch", type=int, default=1, choices=range(1, 33), metavar="1..32",
                   help="records per key request in the concurrent read phases "
                        "(Grantee.read_many: one receipt transaction per request); 1 reads "
                        "one record per request (Grantee.read)")
    p.add_argument("--suite", choices=("standard", "sm"), default="standard")
    p.add_argument("--keep", action="store_true", help="keep the network directory")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
