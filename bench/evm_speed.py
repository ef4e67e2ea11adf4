"""Worst-case execution speed of py-evm here: ``python -m yilian.bench.evm_speed``.

Gas caps only bound time if we know how fast the slowest gas burns. This runs one
transaction per workload on YilianVM (in memory, no disk) and prints gas/s in wall time and
in CPU time of this process (``time.process_time``), so a busy machine shows up as wall >
CPU. Workloads, each the cheapest way we know to spend gas on a given kind of work:

* ``jump-loop``: ``JUMPDEST PUSH0 JUMP`` forever (11 gas per 3 opcodes: the interpreter's
  dispatch cost per gas at its worst);
* ``cheap-ops``: a loop of 2-gas opcodes (``CALLER POP``) closed by a jump;
* ``sstore-same``: ``SSTORE`` of the same warm slot (100 gas each);
* precompile loops (``STATICCALL`` of one precompile with a valid input, over and over):
  ecrecover, modexp, bn254 add/mul/pairing, blake2f, the BLS12-381 ones py-evm
  implements in pure Python (py_ecc), and yilian's credit-code, SM3 (1 KiB) and SM2
  verification precompiles (:mod:`yilian.node.natstd_precompiles`).

Precompiles are priced as on this chain (``execution_limits.PRECOMPILE_GAS_FACTORS``);
``--prague-prices`` measures them at Prague's prices, which is how those factors were chosen.
Each run spends ``--gas`` (default 3,000,000, the default ``maxTxGas``), or a tenth of it for
the slow precompiles at Prague's prices, so the whole benchmark takes under a minute of CPU.
No assertions: figures only. Use them to choose ``maxTxGas``/``maxBlockGas`` in genesis and the
precompile factors (docs/chain-core.md).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from eth.db.atomic import AtomicDB
from eth.vm.forks.prague.computation import PragueComputation
from eth_keys import keys
from eth_typing import Address

from yilian.node.execution_limits import YilianComputation
from yilian.node.genesis import YilianVM, chain_class

_KEY = keys.PrivateKey(b"\x01" * 32)
_SENDER = Address(_KEY.public_key.to_canonical_address())
_CONTRACT = Address(b"\x00" * 19 + b"\xc0")
_CHAIN_ID = 1


def _precompile_loop(address: int) -> bytes:
    """Code: copy calldata to memory once, then STATICCALL ``address`` with it forever."""
    push = [0x60, address] if address < 0x100 else [0x62, *address.to_bytes(3, "big")]
    return bytes([
        0x36, 0x5F, 0x5F, 0x37,  # CALLDATASIZE PUSH0 PUSH0 CALLDATACOPY
        0x5B,  # pc 4: JUMPDEST
        0x60, 0x40, 0x36, 0x36, 0x5F,  # retSize=64 retOffset=size argsSize=size argsOffset=0
        *push, 0x5A, 0xFA, 0x50,  # addr GAS STATICCALL POP
        0x60, 0x04, 0x56,  # PUSH1 4 JUMP
    ])


def _g1(point: object) -> bytes:
    from py_ecc.optimized_bls12_381 import normalize

    x, y = normalize(point)  # type: ignore[arg-type]
    return int(x).to_bytes(64, "big") + int(y).to_bytes(64, "big")


def _g2(point: object) -> bytes:
    from py_ecc.optimized_bls12_381 import normalize

    x, y = normalize(point)  # type: ignore[arg-type]
    coeffs = (*getattr(x, "coeffs"), *getattr(y, "coeffs"))  # noqa: B009 (FQ2 has coeffs)
    return b"".join(int(c).to_bytes(64, "big") for c in coeffs)


def _inputs() -> dict[str, tuple[bytes, bytes]]:
    """Workload name -> (contract code, calldata)."""
    from py_ecc.optimized_bls12_381 import G1, G2

    bn_g1 = (1).to_bytes(32, "big") + (2).to_bytes(32, "big")
    bn_g2 = bytes.fromhex(
        "198e9393920d483a7260bfb731fb5d25f1aa493335a9e71297e485b7aef312c2"
        "1800deef121f1e76426a00665e5c4479674322d4f75edadd46debd5cd992f6ed"
        "090689d0585ff075ec9e99ad690c3395bc4b313370b38ef355acdadcd122975b"
        "12c85ea5db8c6deb4aab71808dcb408fe3d1e7690c43d37b4ce6cc0166fa7daa")
    scalar = (2**256 - 1).to_bytes(32, "big")
    ecrecover_in = bytes.fromhex(
        "456e9aea5e197a1f1af7a3e85a3212fa4049a3ba34c2289b4c860fc0b0c64ef3"
        "000000000000000000000000000000000000000000000000000000000000001c"
        "9242685bf161793cc25603c231bc2f568eb630ea16aa137d2664ac8038825608"
        "4f8ae3bd7535248d0bd448298cc2e2071e56992d0774dc340c368ae950852ada")
    modexp_in = ((32).to_bytes(32, "big") * 3 + b"\x07" * 32 + b"\xff" * 32
                 + b"\xfd" * 32)
    blake_in = ((1000).to_bytes(4, "big") + bytes(range(64)) + bytes(128) + bytes(16)
                + b"\x01")
    return {
        "jump-loop": (bytes([0x5B, 0x5F, 0x56]), b""),
        "cheap-ops": (bytes([0x5B] + [0x33, 0x50] * 32 + [0x5F, 0x56]), b""),
        "sstore-same": (bytes([0x5B, 0x60, 0x01, 0x5F, 0x55, 0x5F, 0x56]), b""),
        "ecrecover": (_precompile_loop(0x01), ecrecover_in),
        "modexp": (_precompile_loop(0x05), modexp_in),
        "bn254-add": (_precompile_loop(0x06), bn_g1 + bn_g1),
        "bn254-mul": (_precompile_loop(0x07), bn_g1 + scalar),
        "bn254-pairing": (_precompile_loop(0x08), bn_g1 + bn_g2),
        "blake2f": (_precompile_loop(0x09), blake_in),
        "bls-g1add": (_precompile_loop(0x0B), _g1(G1) + _g1(G1)),
        "bls-g1msm": (_precompile_loop(0x0C), _g1(G1) + scalar),
        "bls-g2add": (_precompile_loop(0x0D), _g2(G2) + _g2(G2)),
        "bls-g2msm": (_precompile_loop(0x0E), _g2(G2) + scalar),
        "bls-pairing": (_precompile_loop(0x0F), _g1(G1) + _g2(G2)),
        "bls-map-fp": (_precompile_loop(0x10), bytes(16) + (5).to_bytes(48, "big")),
        "bls-map-fp2": (_precompile_loop(0x11), bytes(16) + (5).to_bytes(48, "big")
                        + bytes(16) + (7).to_bytes(48, "big")),
        # yilian's national-standard precompiles (not under --prague-prices)
        "credit-code": (_precompile_loop(0x0A1200), b"914403001922038216".ljust(32, b"\0")),
        "sm3-1kib": (_precompile_loop(0x0A1201), bytes(1024)),
        "sm2-verify": (_precompile_loop(0x0A1202), _sm2_input()),
    }


NATSTD = {"credit-code", "sm3-1kib", "sm2-verify"}


def _sm2_input() -> bytes:
    from yilian.crypto import sm2

    private = sm2.generate_private_key()
    message = b"bid document digest"
    return sm2.public_key(private) + sm2.sign(private, message) + message


# Workloads that burn gas slowly at Prague's prices (--prague-prices): run with --gas / 10.
SLOW = {"bn254-mul", "bn254-pairing", "blake2f", "bls-g1add", "bls-g1msm", "bls-g2add",
        "bls-g2msm", "bls-pairing", "bls-map-fp", "bls-map-fp2"}


@dataclass(frozen=True)
class Result:
    name: str
    gas: int
    wall_s: float
    cpu_s: float

    @property
    def gas_per_wall_s(self) -> float:
        return self.gas / self.wall_s

    @property
    def gas_per_cpu_s(self) -> float:
        return self.gas / self.cpu_s if self.cpu_s else float("inf")


def run(name: str, code: bytes, data: bytes, gas: int) -> Result:
    """Execute one call of ``gas`` into ``code`` and time it."""
    genesis = {"difficulty": 0, "gas_limit": max(gas * 2, 30_000_000), "timestamp": 0,
               "extra_data": b"", "base_fee_per_gas": 0, "nonce": b"\x00" * 8}
    state = {_SENDER: {"balance": 0, "nonce": 0, "code": b"", "storage": {}},
             _CONTRACT: {"balance": 0, "nonce": 0, "code": code, "storage": {}}}
    chain = chain_class(_CHAIN_ID).from_genesis(AtomicDB(), genesis, state)  # type: ignore[arg-type]
    vm = chain.get_vm()
    tx = YilianVM.create_unsigned_transaction(
        nonce=0, gas_price=0, gas=gas, to=_CONTRACT, value=0, data=data,
    ).as_signed_transaction(_KEY, chain_id=_CHAIN_ID)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    receipt, computation = vm.apply_transaction(vm.get_header(), tx)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if computation.is_error and "gas" not in str(computation.error).lower():
        raise RuntimeError(f"{name}: the workload failed: {computation.error!r}")
    return Result(name, receipt.gas_used, wall, cpu)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gas", type=int, default=3_000_000, help="gas per workload")
    parser.add_argument("--prague-prices", action="store_true",
                        help="measure precompiles at Prague's prices (no repricing)")
    parser.add_argument("--only", nargs="*", help="workload names to run")
    args = parser.parse_args(argv)
    workloads = _inputs()
    if args.prague_prices:
        YilianComputation._precompiles = PragueComputation.get_precompiles()
    print(f"{'workload':<14} {'gas':>10} {'wall s':>8} {'cpu s':>8} "
          f"{'Mgas/s wall':>12} {'Mgas/s cpu':>11}")
    results = []
    for name, (code, data) in workloads.items():
        if (args.only and name not in args.only) or (args.prague_prices and name in NATSTD):
            continue
        slow = args.prague_prices and name in SLOW
        gas = max(args.gas // 10, 200_000) if slow else args.gas
        r = run(name, code, data, gas)
        results.append(r)
        print(f"{r.name:<14} {r.gas:>10} {r.wall_s:>8.2f} {r.cpu_s:>8.2f} "
              f"{r.gas_per_wall_s / 1e6:>12.3f} {r.gas_per_cpu_s / 1e6:>11.3f}", flush=True)
    worst = min(results, key=lambda r: r.gas_per_cpu_s)
    print(f"slowest: {worst.name} at {worst.gas_per_cpu_s / 1e6:.3f} Mgas per CPU second")


if __name__ == "__main__":
    main()
