"""Exceptions of the consensus core.

The state machine itself (:func:`yilian.consensus.machine.step`) never raises on
well-typed input: malformed, stale or hostile messages are ignored. Exceptions are
raised only when constructing invalid data (validator sets, configuration) and by the
checking helpers (``check_certificate``, ``check_evidence``).
"""

from __future__ import annotations


class ConsensusError(Exception):
    """Base class of every exception raised by ``yilian.consensus``."""


class InvalidValidatorSet(ConsensusError, ValueError):
    """A validator set violates its invariants (empty, non-positive power, duplicates...)."""


class InvalidConfig(ConsensusError, ValueError):
    """A configuration value is out of range (negative timeout, zero buffer...)."""


class InvalidCertificate(ConsensusError):
    """A commit certificate does not prove > 2/3 of the power precommitted its value."""


class InvalidEvidence(ConsensusError):
    """A piece of misbehaviour evidence does not prove a double sign."""
