"""A wall-clock deadline checked inside EVM execution.

py-evm runs opcodes in a Python loop that nothing outside can interrupt, and gas alone
does not bound time (a cheap-opcode loop runs ~3M gas/s here). :func:`limit_state`
makes every computation run on one py-evm state (the message, its sub-calls and
creations, every run of a gas-estimation search) raise :class:`DeadlineExceeded` once
``time.monotonic()`` passes the deadline. The check rides on the gas charge every
opcode makes (``Computation.consume_gas``), looking at the clock every
``CHECK_EVERY`` charges, so its cost is a counter increment per opcode.

Invariants: ``DeadlineExceeded`` is not a ``VMError``, so py-evm never records it as
the transaction's failure: it propagates out of execution, and the state it was run on
must be discarded (callers use throw-away states: ``eth_call``'s costless state, a block
candidate). Interface for other users (block building may adopt it): ``limit_state``
and ``DeadlineExceeded`` only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from eth.abc import ComputationAPI, StateAPI

CHECK_EVERY = 256


class DeadlineExceeded(Exception):
    """Execution ran past its deadline; ``limit_s`` is the time it was given."""

    def __init__(self, limit_s: float) -> None:
        super().__init__(f"execution ran past its time limit of {limit_s:g} s")
        self.limit_s = limit_s


@dataclass(frozen=True)
class Deadline:
    """A point in ``time.monotonic()`` time, and the limit it was set from (for messages)."""

    at: float
    limit_s: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def passed(self) -> bool:
        return time.monotonic() > self.at


def limit_state(state: StateAPI, deadline: Deadline) -> None:
    """From now on, computations run on ``state`` raise DeadlineExceeded past ``deadline``.

    Calling it again on the same state adds a further (independent) deadline."""
    base: type[ComputationAPI] = state.computation_class
    charges = 0
    at, limit_s = deadline.at, deadline.limit_s

    def consume_gas(self: Any, amount: int, reason: str) -> None:
        nonlocal charges
        charges += 1
        if charges % CHECK_EVERY == 0 and time.monotonic() > at:
            raise DeadlineExceeded(limit_s)
        base.consume_gas(self, amount, reason)

    state.computation_class = type(
        f"Deadline{base.__name__}", (base,), {"consume_gas": consume_gas})
