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

Invariants: with no limit set (the default, and in every thread that sets none) execution
is exactly Prague's; the limits are per thread (context variables), so ``eth_call`` in an
API thread never sees the builder's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

from eth.abc import ComputationAPI, OpcodeAPI
from eth.vm import opcode_values as op
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.state import PragueState

_deadline: ContextVar[float | None] = ContextVar("yilian_deadline", default=None)
_gas_cap: ContextVar[int | None] = ContextVar("yilian_block_gas_cap", default=None)

_CHECKED = (op.JUMP, op.JUMPI, op.CALL, op.CALLCODE, op.DELEGATECALL, op.STATICCALL,
            op.CREATE, op.CREATE2)


class OutOfTime(Exception):
    """The builder's deadline passed while a transaction was executing."""


class OverGasCap(Exception):
    """An imported block used more gas than the network's per-block cap."""


@contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Abort execution in this thread once ``time.monotonic()`` passes ``at`` (None: never)."""
    token = _deadline.set(at)
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
        at = _deadline.get()
        if at is not None and time.monotonic() > at:
            raise OutOfTime("the block's time budget ran out during this transaction")
        return self.__wrapped__(computation=computation)


YILIAN_OPCODES: dict[int, OpcodeAPI] = {
    code: (cast(OpcodeAPI, _DeadlineChecked(fn)) if code in _CHECKED else fn)
    for code, fn in PragueComputation.opcodes.items()}


class YilianComputation(PragueComputation):
    """Prague's computation with the deadline checked at jumps, calls and creations."""

    opcodes = YILIAN_OPCODES


class YilianState(PragueState):
    computation_class = YilianComputation
