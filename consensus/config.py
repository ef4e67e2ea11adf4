"""Configuration of the consensus core: timeouts (growing per round) and per-node limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from yilian.consensus.errors import InvalidConfig


class TimeoutKind(IntEnum):
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


@dataclass(frozen=True)
class TimeoutConfig:
    """Timeout of ``kind`` in round ``r``: ``min(base + r * delta, max_ms)`` milliseconds.

    Growing timeouts make every timeout eventually exceed the (unknown) post-GST message
    delay, which the paper's liveness argument needs; ``max_ms`` bounds them.
    """

    propose_ms: int = 3000
    propose_delta_ms: int = 500
    prevote_ms: int = 1000
    prevote_delta_ms: int = 500
    precommit_ms: int = 1000
    precommit_delta_ms: int = 500
    max_ms: int = 60_000

    def __post_init__(self) -> None:
        for name in ("propose_ms", "propose_delta_ms", "prevote_ms", "prevote_delta_ms",
                     "precommit_ms", "precommit_delta_ms", "max_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise InvalidConfig(f"TimeoutConfig.{name} must be an int >= 0, got {value!r}")


def timeout_duration(cfg: TimeoutConfig, kind: TimeoutKind, round_: int) -> int:
    """``min(base(kind) + max(round_, 0) * delta(kind), cfg.max_ms)``."""
    base, delta = {
        TimeoutKind.PROPOSE: (cfg.propose_ms, cfg.propose_delta_ms),
        TimeoutKind.PREVOTE: (cfg.prevote_ms, cfg.prevote_delta_ms),
        TimeoutKind.PRECOMMIT: (cfg.precommit_ms, cfg.precommit_delta_ms),
    }[kind]
    return min(base + max(round_, 0) * delta, cfg.max_ms)


@dataclass(frozen=True)
class ConsensusConfig:
    """Per-node configuration.

    ``address`` is this node's validator address, or None for an observer (never signs,
    still decides from others' votes). A node whose address is not in the height's
    validator set also acts as an observer for that height.

    Messages for heights ``h+1 .. h+future_heights`` are buffered (at most
    ``max_buffered``) and replayed on ``NewHeight``; messages for rounds above
    ``round + max_round_ahead`` are dropped, and at most ``max_conflicting_votes``
    conflicting votes are kept per (round, type, validator) (bounds memory under
    Byzantine spam).
    """

    address: bytes | None
    timeouts: TimeoutConfig = field(default_factory=TimeoutConfig)
    future_heights: int = 2
    max_buffered: int = 10_000
    max_round_ahead: int = 10_000
    max_conflicting_votes: int = 8

    def __post_init__(self) -> None:
        if min(self.future_heights, self.max_buffered, self.max_round_ahead,
               self.max_conflicting_votes) < 0:
            raise InvalidConfig("future_heights, max_buffered, max_round_ahead and "
                                "max_conflicting_votes must be >= 0")
