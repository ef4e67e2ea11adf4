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
   verified.

Each is run twice in the same run: sequentially (one call at a time: the baseline, which
is dominated by waiting for a final block) and with ``--concurrency`` callers, and the
report prints the rate of both, their ratio and the latency p50/p99. The network is always
stopped at the end. Exit status 0 when every call succeeded.
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

from yilian.bench.measure import percentile
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

    @property
    def rate(self) -> float:
        return (self.calls - self.errors) / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        lat = sorted(self.latencies)
        return (f"  {self.label:<30} {self.calls:>5} calls  conc {self.concurrency:>3}  "
                f"{self.rate:8.1f}/s  p50 {percentile(lat, 50):6.3f} s  "
                f"p99 {percentile(lat, 99):6.3f} s  errors {self.errors}")


def _run(label: str, work: Sequence[Callable[[], Any]], concurrency: int) -> Phase:
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

    start = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, work))
    return Phase(label, len(work), concurrency, time.monotonic() - start, latencies, errors)


def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="yilian-bench-records-"))
    data = tmp / "net"
    try:
        init_network(data, centers=4, suite=args.suite, base_port=launcher.free_port_range(8))
        net = launcher.up(data)
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
        published: list[str] = []
        plock = threading.Lock()

        def publish(i: int, n: int) -> Callable[[], Any]:
            def fn() -> None:
                rtype = TYPES[n % len(TYPES)]
                out = center(i % 4).publish_record(
                    rtype, ENTERPRISE, standard.example_record(rtype, ENTERPRISE),
                    owner="subject", client_id=f"bench-{i}-{n}")
                with plock:
                    published.append(out.record_id)
            return fn

        print(f"yilian records benchmark: 4 centers, suite {args.suite}, "
              f"{args.records} records, {args.reads} reads, concurrency {args.concurrency}")
        seq_pub = _run("publish, sequential (baseline)",
                       [publish(0, n) for n in range(args.baseline)], 1)
        print(seq_pub.line())
        par_pub = _run("publish, 4 centers concurrent",
                       [publish(n % 4, 10_000 + n) for n in range(args.records)],
                       args.concurrency)
        print(par_pub.line())
        ent_m = next(m for m in net["members"] if m["id"] == ENTERPRISE)
        grant = Enterprise(Client(api[1], ent_m["privateKey"]), ENTERPRISE).grant(
            bank_m["id"], types=TYPES, purpose="benchmark", max_reads=2**32 - 1,
            valid_for_s=3600)
        gid = int(grant["grant_id"])
        records = list(published)

        def read(n: int) -> Callable[[], Any]:
            def fn() -> None:
                bank().read(records[n % len(records)], gid)
            return fn

        seq_read = _run("read via B, sequential (baseline)",
                        [read(n) for n in range(args.baseline)], 1)
        print(seq_read.line())
        par_read = _run("read via B, concurrent", [read(n) for n in range(args.reads)],
                        args.concurrency)
        print(par_read.line())
        print(f"published records/s: {par_pub.rate:.1f} (ratio to sequential baseline "
              f"{par_pub.rate / max(seq_pub.rate, 1e-9):.2f})")
        print(f"grant-checked reads/s: {par_read.rate:.1f} (ratio to sequential baseline "
              f"{par_read.rate / max(seq_read.rate, 1e-9):.2f})")
        failed = seq_pub.errors + par_pub.errors + seq_read.errors + par_read.errors
        return 0 if failed == 0 else 1
    finally:
        if (data / launcher.NETWORK_FILE).exists():
            launcher.down(data)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m yilian.bench.records",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--records", type=int, default=400, help="records published concurrently")
    p.add_argument("--reads", type=int, default=400, help="grant-checked reads, concurrently")
    p.add_argument("--baseline", type=int, default=20,
                   help="calls of each sequential baseline phase")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent callers")
    p.add_argument("--suite", choices=("standard", "sm"), default="standard")
    p.add_argument("--keep", action="store_true", help="keep the network directory")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
