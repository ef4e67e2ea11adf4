"""Signature throughput of the crypto suites: ``python -m yilian.bench.crypto``.

Measures, single-threaded in this process (pinned to one CPU where the OS allows):

* SM2 verify/s and sign/s through ``yilian.crypto.suites.SM`` (OpenSSL libcrypto via
  ctypes; parsed public keys cached, as on the node's hot path);
* the baseline in the same run: gmssl (pure Python) ``verify_with_sm3``/s on the same
  key, message and signature;
* Ed25519 verify/s through ``STANDARD`` (PyNaCl/libsodium);
* the ratio ours/gmssl for SM2 verification, and whether the design goal of at least
  3,000 SM2 verifications/s on one core is met.

Every measured call is checked to return the expected result. Each rate is calls /
elapsed wall time over a run of at least ``--seconds`` (gmssl: ``--gmssl-seconds``).
Exit status 0, or with ``--check`` 1 when the goal is not met.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from yilian.crypto.suites import Suite

GOAL_SM2_VERIFY_PER_S = 3000.0


def rate(fn: Callable[[], object], seconds: float, batch: int) -> tuple[float, int]:
    """Calls of ``fn`` per second over at least ``seconds``; returns (rate, calls)."""
    calls = 0
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls / elapsed, calls


def pin_one_cpu() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})
    return f"pinned to CPU {cpus[-1]}"


def signed(suite: Suite, msg: bytes) -> tuple[bytes, bytes, bytes]:
    """A new key pair of ``suite`` and its signature of ``msg``: (private, public, sig)."""
    private = suite.generate_private_key()
    return private, suite.public_key(private), suite.sign(private, msg)


def verifier(suite: Suite, public: bytes, msg: bytes, sig: bytes) -> Callable[[], None]:
    """One measured verification: raises AssertionError unless ``sig`` verifies."""

    def verify() -> None:
        if not suite.verify(public, msg, sig):
            raise AssertionError(f"{suite.name} verification failed")

    return verify


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m yilian.bench.crypto", description=__doc__)
    ap.add_argument("--seconds", type=float, default=3.0, help="per fast measurement")
    ap.add_argument("--gmssl-seconds", type=float, default=3.0, help="for the gmssl baseline")
    ap.add_argument("--message-size", type=int, default=128)
    ap.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    ap.add_argument("--check", action="store_true", help="exit 1 if the goal is not met")
    args = ap.parse_args(argv)

    from gmssl import sm2 as gm_sm2

    from yilian.crypto import sm2
    from yilian.crypto.suites import SM, STANDARD

    pinned = "not pinned" if args.no_pin else pin_one_cpu()
    print(f"python {platform.python_version()}, {sm2.openssl_version()}, {pinned}")
    msg = os.urandom(args.message_size)

    d, pub, sig = signed(SM, msg)
    sm2_verify = verifier(SM, pub, msg, sig)

    def sm2_sign() -> None:
        SM.sign(d, msg)

    gm = gm_sm2.CryptSM2(private_key=d.hex(), public_key="")
    gm.public_key = pub.hex()  # bypass gmssl's lstrip("04") on the constructor argument
    sig_hex = sig.hex()

    def gm_verify() -> None:
        if not gm.verify_with_sm3(sig_hex, msg):
            raise AssertionError("gmssl verification failed")

    _, epub, esig = signed(STANDARD, msg)
    ed_verify = verifier(STANDARD, epub, msg, esig)

    ours_v, n_v = rate(sm2_verify, args.seconds, 100)
    ours_s, n_s = rate(sm2_sign, args.seconds, 100)
    gm_v, n_g = rate(gm_verify, args.gmssl_seconds, 5)
    ed_v, n_e = rate(ed_verify, args.seconds, 200)

    print(f"message size: {args.message_size} bytes")
    print(f"SM2 verify (yilian, OpenSSL libcrypto): {ours_v:10,.0f} /s  ({n_v} calls)")
    print(f"SM2 sign   (yilian, OpenSSL libcrypto): {ours_s:10,.0f} /s  ({n_s} calls)")
    print(f"SM2 verify (gmssl, pure Python):        {gm_v:10,.1f} /s  ({n_g} calls)")
    print(f"Ed25519 verify (PyNaCl/libsodium):      {ed_v:10,.0f} /s  ({n_e} calls)")
    print(f"SM2 verify ratio yilian/gmssl:          {ours_v / gm_v:10,.1f} x")
    met = ours_v >= GOAL_SM2_VERIFY_PER_S
    print(
        f"goal >= {GOAL_SM2_VERIFY_PER_S:,.0f} SM2 verifications/s on one core: "
        f"{'MET' if met else 'NOT MET'} ({ours_v:,.0f} /s)"
    )
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
