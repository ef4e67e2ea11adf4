"""Limits that stop EVM execution part-way: the proposer's time budget and a block's gas cap.

Gas alone does not bound time (see ``bench/evm_speed.py``), and a proposer must propose
before the others' propose timeout, so the block builder sets a wall-clock *deadline* that
is checked inside execution: at every backward-capable jump (``JUMP``, ``JUMPI``) and every
message call or creation, which every long-running transaction must pass through (code
without jumps or calls runs at most 24,576 opcodes per frame). When it has passed,
:class:`OutOfTime` is raised; it is not a py-evm ``VMError``, so no frame swallows it as a
failed call and it leaves ``apply_transaction`` for the builder to handle (revert the
transaction, leave it for a later block).

Importing a block built elsewhere sets a *gas cap* instead: after each transaction the
block's cumulative gas is compared with it and :class:`OverGasCap` ends the import, so a
proposer that ignores the cap costs a replica at most the cap plus one transaction.

Gas that buys time: py-evm computes several precompiles in pure Python, up to 25 times
slower per gas than its interpreter's slowest loop, and a precompile call cannot be cut
off part-way. So this chain charges those precompiles ``PRECOMPILE_GAS_FACTORS`` times
Prague's price (each ``consume_gas`` they make is multiplied, before they compute), which
brings every one to at least the interpreter's worst rate measured by
``bench/evm_speed.py``; the gas caps then bound time for them too. This is a rule of this
chain (documented in docs/chain-core.md), like the zero base fee.

``eth_call`` and ``eth_estimateGas`` use the same deadline (``ChainCore.call`` and
``estimate_gas`` take a :class:`Deadline`), with the limit in the message.

Invariants: with no limit set (the default, and in every thread that sets none) execution
is Prague's, except the precompile prices above; the limits are per thread (context
variables), so ``eth_call`` in an API thread never sees the builder's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

from eth.abc import (
    ComputationAPI,
    MessageAPI,
    OpcodeAPI,
    StateAPI,
    TransactionContextAPI,
)
from eth.vm import opcode_values as op
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.state import PragueState

from yilian.node.native_grants import canonical_accesses, record_accesses
from yilian.node.natstd_precompiles import NATSTD_PRECOMPILES


@dataclass(frozen=True)
class Deadline:
    """A point in ``time.monotonic()`` time, and the limit it was set from (for messages)."""

    at: float
    limit_s: float | None = None

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def passed(self) -> bool:
        return time.monotonic() > self.at


_deadline: ContextVar[Deadline | None] = ContextVar("yilian_deadline", default=None)
_gas_cap: ContextVar[int | None] = ContextVar("yilian_block_gas_cap", default=None)

_CHECKED = (op.JUMP, op.JUMPI, op.CALL, op.CALLCODE, op.DELEGATECALL, op.STATICCALL,
            op.CREATE, op.CREATE2)


class OutOfTime(Exception):
    """The deadline passed while a transaction (or an ``eth_call``) was executing."""

    def __init__(self, limit: Deadline) -> None:
        self.limit_s = limit.limit_s
        super().__init__("execution ran past its time limit" + (
            "" if limit.limit_s is None else f" of {limit.limit_s:g} s"))


class OverGasCap(Exception):
    """An imported block used more gas than the network's per-block cap."""


@contextmanager
def deadline(at: float | Deadline | None) -> Iterator[None]:
    """Abort execution in this thread once ``time.monotonic()`` passes ``at`` (None: never)
    with :class:`OutOfTime`."""
    token = _deadline.set(Deadline(at) if isinstance(at, float | int) else at)
    try:
        yield
    finally:
        _deadline.reset(token)


@contextmanager
def block_gas_cap(cap: int | None) -> Iterator[None]:
    """End a block import in this thread once its cumulative gas passes ``cap``."""
    token = _gas_cap.set(cap)
    try:
        yield
    finally:
        _gas_cap.reset(token)


def check_block_gas(gas_used: int) -> None:
    cap = _gas_cap.get()
    if cap is not None and gas_used > cap:
        raise OverGasCap(f"the block uses more than the per-block gas cap {cap}")


class _DeadlineChecked:
    """An opcode that first checks the deadline, then runs the wrapped Prague opcode."""

    def __init__(self, inner: Any) -> None:
        self.__wrapped__ = inner
        self.mnemonic = inner.mnemonic
        self.gas_cost = inner.gas_cost

    def __call__(self, computation: ComputationAPI) -> Any:
        limit = _deadline.get()
        if limit is not None and time.monotonic() > limit.at:
            raise OutOfTime(limit)
        return self.__wrapped__(computation=computation)


YILIAN_OPCODES: dict[int, OpcodeAPI] = {
    code: (cast(OpcodeAPI, _DeadlineChecked(fn)) if code in _CHECKED else fn)
    for code, fn in PragueComputation.opcodes.items()}


# Precompile address -> price multiplier: ceil(jump-loop Mgas/s / precompile Mgas/s), CPU
# time, the larger of two runs of ``python -m yilian.bench.evm_speed`` (docs/chain-core.md).
PRECOMPILE_GAS_FACTORS = {
    0x06: 2,  # bn254 add
    0x07: 7,  # bn254 mul
    0x08: 14,  # bn254 pairing
    0x09: 26,  # blake2f (1 gas per round in Prague)
    0x0B: 3,  # BLS12-381 G1 add
    0x0C: 7,  # G1 MSM
    0x0D: 5,  # G2 add
    0x0E: 12,  # G2 MSM
    0x0F: 20,  # pairing check
    0x10: 2,  # map fp to G1
    0x11: 16,  # map fp2 to G2
}


class _Repriced:
    """A precompile whose every gas charge is multiplied by ``factor``."""

    def __init__(self, inner: Any, factor: int) -> None:
        self.__wrapped__ = inner
        self.factor = factor

    def __call__(self, computation: ComputationAPI) -> Any:
        charge = computation.consume_gas
        factor = self.factor

        def consume_gas(amount: int, reason: str) -> None:
            charge(amount * factor, reason)

        # An instance attribute shadows the method for this one (fresh) computation only.
        setattr(computation, "consume_gas", consume_gas)  # noqa: B010
        try:
            return self.__wrapped__(computation)
        finally:
            delattr(computation, "consume_gas")


def _address(n: int) -> bytes:
    return n.to_bytes(20, "big")


YILIAN_PRECOMPILES = {
    address: (_Repriced(fn, PRECOMPILE_GAS_FACTORS[int.from_bytes(address, "big")])
              if int.from_bytes(address, "big") in PRECOMPILE_GAS_FACTORS else fn)
    for address, fn in PragueComputation.get_precompiles().items()}
assert all(_address(n) in YILIAN_PRECOMPILES for n in PRECOMPILE_GAS_FACTORS)
assert not set(NATSTD_PRECOMPILES) & set(YILIAN_PRECOMPILES)
YILIAN_PRECOMPILES.update(NATSTD_PRECOMPILES)  # credit code, SM3, SM2 verify


class YilianComputation(PragueComputation):
    """Prague's computation with the deadline checked at jumps, calls and creations, the
    slow precompiles repriced, the national-standard precompiles
    (:mod:`yilian.node.natstd_precompiles`) added, and ``Grants.record_access`` and
    ``record_access_many`` run natively (:mod:`yilian.node.native_grants`;
    ``native_grants = False`` runs their bytecode: the reference the differential test
    compares with)."""

    opcodes = YILIAN_OPCODES
    _precompiles = YILIAN_PRECOMPILES
    native_grants = True

    @classmethod
    def apply_computation(cls, state: StateAPI, message: MessageAPI,
                          transaction_context: TransactionContextAPI,
                          parent_computation: ComputationAPI | None = None
                          ) -> ComputationAPI:
        accesses = canonical_accesses(state, message) if cls.native_grants else None
        if accesses is None:
            return super().apply_computation(state, message, transaction_context,
                                             parent_computation)
        with cls(state, message, transaction_context) as computation:
            # as the bytecode path does (recording an access creates no contract)
            computation.contracts_created = (
                [] if parent_computation is None else parent_computation.contracts_created)
            record_accesses(computation, accesses)
        return computation


class YilianState(PragueState):
    computation_class = YilianComputation
