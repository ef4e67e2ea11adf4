"""Consensus data: validators, votes, proposals, certificates, evidence, signing bytes.

Everything here is an immutable value (frozen dataclass) or a pure function.

Signatures are never created or checked by the state machine. The *host* (the node)
signs :func:`vote_sign_bytes` / :func:`proposal_sign_bytes` with the validator key and
verifies incoming messages before feeding them to the machine. Functions here that must
check signatures (:func:`check_certificate`, :func:`check_evidence`) take a pluggable
``verify(public_key, message, signature) -> bool`` so the signature suite (Ed25519,
SM2, ...) is the host's choice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache

import msgpack

from yilian.consensus.errors import InvalidCertificate, InvalidEvidence, InvalidValidatorSet

#: ``verify(public_key, message, signature) -> bool``; must not raise on bad input.
VerifyFn = Callable[[bytes, bytes, bytes], bool]

#: Upper bound on ``total_power / gcd(powers)``: the proposer schedule has this period and
#: is materialised once per validator set (see :func:`proposer`).
MAX_SCHEDULE_PERIOD = 1 << 20

NIL_ROUND = -1
"""``valid_round`` / ``locked_round`` value meaning "none" (the paper's -1)."""


class VoteType(IntEnum):
    """Vote kinds. Numbered like ``yilian.node.privval.Step`` (PROPOSE = 1 there)."""

    PREVOTE = 2
    PRECOMMIT = 3


@dataclass(frozen=True)
class Validator:
    """One consortium member's validator key. ``power`` > 0 is its voting weight."""

    address: bytes
    public_key: bytes
    power: int


@dataclass(frozen=True)
class ValidatorSet:
    """An ordered, non-empty set of validators with distinct addresses and positive power.

    Thresholds (``T`` = total power):

    * ``quorum``: the smallest power strictly greater than 2/3 T (``2T // 3 + 1``), the
      paper's "2f+1";
    * ``f_plus_one``: the smallest power strictly greater than 1/3 T (``T // 3 + 1``),
      the paper's "f+1": any set with this power contains a correct validator.
    """

    validators: tuple[Validator, ...]
    _by_address: dict[bytes, Validator] = field(
        init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        vals = tuple(self.validators)
        if not vals:
            raise InvalidValidatorSet("empty validator set")
        by_address: dict[bytes, Validator] = {}
        for v in vals:
            if not isinstance(v, Validator):
                raise InvalidValidatorSet(f"not a Validator: {v!r}")
            if not isinstance(v.power, int) or v.power <= 0:
                raise InvalidValidatorSet(f"validator {v.address.hex()} has power {v.power}")
            if v.address in by_address:
                raise InvalidValidatorSet(f"duplicate validator address {v.address.hex()}")
            by_address[v.address] = v
        g = math.gcd(*(v.power for v in vals))
        if sum(v.power for v in vals) // g > MAX_SCHEDULE_PERIOD:
            raise InvalidValidatorSet("total power / gcd(powers) exceeds MAX_SCHEDULE_PERIOD")
        object.__setattr__(self, "validators", vals)
        object.__setattr__(self, "_by_address", by_address)

    @property
    def total_power(self) -> int:
        return sum(v.power for v in self.validators)

    @property
    def quorum(self) -> int:
        """Smallest power > 2/3 of the total."""
        return self.total_power * 2 // 3 + 1

    @property
    def f_plus_one(self) -> int:
        """Smallest power > 1/3 of the total."""
        return self.total_power // 3 + 1

    def get(self, address: bytes) -> Validator | None:
        return self._by_address.get(address)

    def __contains__(self, address: object) -> bool:
        return address in self._by_address

    def power_of(self, addresses: frozenset[bytes] | set[bytes]) -> int:
        """Total power of the given addresses; unknown addresses count 0."""
        return sum(self._by_address[a].power for a in addresses if a in self._by_address)


# --- proposer rotation -------------------------------------------------------------------


@lru_cache(maxsize=64)
def proposer_schedule(vset: ValidatorSet) -> tuple[bytes, ...]:
    """One period of the proposer sequence of ``vset`` (addresses).

    This is CometBFT's proposer-priority algorithm (``IncrementProposerPriority``)
    started from all-zero priorities, which with a fixed set is the "smooth weighted
    round robin": each step every validator's priority grows by its power, the validator
    with the highest priority (ties: the smallest address) is chosen and its priority
    drops by the total power. Priorities always sum to 0 and stay within
    ``(-T, T)``, so CometBFT's rescaling/centring steps are no-ops. Powers are first
    divided by their gcd (the sequence is unchanged); with ``T`` the reduced total, the
    priorities return to all zero after exactly ``T`` steps, so the sequence has period
    ``T`` and each validator proposes exactly ``power / gcd`` times per period (fairness).
    """
    vals = vset.validators
    g = math.gcd(*(v.power for v in vals))
    powers = [v.power // g for v in vals]
    total = sum(powers)
    prio = [0] * len(vals)
    out: list[bytes] = []
    for _ in range(total):
        for i, p in enumerate(powers):
            prio[i] += p
        best = 0
        for i in range(1, len(vals)):
            if prio[i] > prio[best] or (
                    prio[i] == prio[best] and vals[i].address < vals[best].address):
                best = i
        prio[best] -= total
        out.append(vals[best].address)
    return tuple(out)


def proposer(vset: ValidatorSet, height: int, round_: int) -> bytes:
    """Address of the proposer for ``(height, round_)``; heights start at 1, rounds at 0.

    ``proposer = schedule[(height - 1 + round_) mod T]`` as in CometBFT with a static set:
    the set's priorities advance once per height and once more per round, so round ``r``
    of height ``h`` has the proposer that round 0 of height ``h + r`` has. Deterministic
    and total (any integers accepted).
    """
    sched = proposer_schedule(vset)
    return sched[(height - 1 + round_) % len(sched)]


# --- messages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Vote:
    """A signed PREVOTE or PRECOMMIT. ``value_id`` None is a vote for nil.

    ``validator`` is the signer's address; ``signature`` is over
    :func:`vote_sign_bytes` (empty until the host signs it).
    """

    type: VoteType
    height: int
    round: int
    value_id: bytes | None
    validator: bytes
    signature: bytes = b""


@dataclass(frozen=True)
class Proposal:
    """A signed PROPOSAL of the value (block) identified by ``value_id`` (its hash).

    The value itself travels beside the proposal; the host validates it and tells the
    machine the result (the paper's ``valid(v)``). ``valid_round`` is -1 or the round in
    which the proposer saw a prevote quorum for this value (the paper's ``vr``).
    """

    height: int
    round: int
    value_id: bytes
    valid_round: int
    proposer: bytes
    signature: bytes = b""


@dataclass(frozen=True)
class CommitCertificate:
    """Proof that ``value_id`` was decided at ``height``: > 2/3 of the power's precommits
    for it in ``round``. ``votes`` are ordered as the validator set lists their signers."""

    height: int
    round: int
    value_id: bytes
    votes: tuple[Vote, ...]


@dataclass(frozen=True)
class DuplicateVoteEvidence:
    """Two votes by one validator for the same height, round and type but different values.

    ``vote_a`` is the one the reporting node received (and counted) first.
    """

    vote_a: Vote
    vote_b: Vote


_VOTE_DOMAIN = "yilian/consensus/vote/v1"
_PROPOSAL_DOMAIN = "yilian/consensus/proposal/v1"


def vote_sign_bytes(chain_id: str, vote: Vote) -> bytes:
    """Canonical bytes a validator signs for ``vote`` (the signature excluded).

    msgpack array, fixed order:
    ``[domain, chain_id, type, height, round, value_id or nil, validator]``
    with ``domain = "yilian/consensus/vote/v1"``. msgpack always uses the shortest
    integer form, so the encoding is unique.
    """
    return msgpack.packb(
        [_VOTE_DOMAIN, chain_id, int(vote.type), vote.height, vote.round,
         None if vote.value_id is None else bytes(vote.value_id), bytes(vote.validator)],
        use_bin_type=True)


def proposal_sign_bytes(chain_id: str, proposal: Proposal) -> bytes:
    """Canonical bytes the proposer signs (the signature excluded).

    msgpack array: ``[domain, chain_id, height, round, value_id, valid_round, proposer]``
    with ``domain = "yilian/consensus/proposal/v1"``.
    """
    return msgpack.packb(
        [_PROPOSAL_DOMAIN, chain_id, proposal.height, proposal.round,
         bytes(proposal.value_id), proposal.valid_round, bytes(proposal.proposer)],
        use_bin_type=True)


def _verify_vote(vset: ValidatorSet, chain_id: str, vote: Vote, verify: VerifyFn) -> bool:
    val = vset.get(vote.validator)
    if val is None:
        return False
    try:
        return bool(verify(val.public_key, vote_sign_bytes(chain_id, vote), vote.signature))
    except Exception:
        return False


def check_certificate(cert: CommitCertificate, vset: ValidatorSet, chain_id: str,
                      verify: VerifyFn) -> None:
    """Raise :class:`InvalidCertificate` unless ``cert`` proves its decision.

    Every vote must be a PRECOMMIT for exactly (height, round, value_id) of ``cert``,
    by a distinct member of ``vset``, correctly signed; their total power must reach
    ``vset.quorum`` (> 2/3).
    """
    seen: set[bytes] = set()
    power = 0
    for vote in cert.votes:
        if (vote.type != VoteType.PRECOMMIT or vote.height != cert.height
                or vote.round != cert.round or vote.value_id != cert.value_id):
            raise InvalidCertificate("vote does not match the certificate's height/round/value")
        val = vset.get(vote.validator)
        if val is None:
            raise InvalidCertificate(f"vote by non-validator {vote.validator.hex()}")
        if vote.validator in seen:
            raise InvalidCertificate(f"two votes by validator {vote.validator.hex()}")
        if not _verify_vote(vset, chain_id, vote, verify):
            raise InvalidCertificate(f"bad signature by {vote.validator.hex()}")
        seen.add(vote.validator)
        power += val.power
    if power < vset.quorum:
        raise InvalidCertificate(f"precommit power {power} < quorum {vset.quorum}")


def verify_certificate(cert: CommitCertificate, vset: ValidatorSet, chain_id: str,
                       verify: VerifyFn) -> bool:
    """True iff :func:`check_certificate` accepts ``cert``."""
    try:
        check_certificate(cert, vset, chain_id, verify)
    except InvalidCertificate:
        return False
    return True


def check_evidence(ev: DuplicateVoteEvidence, vset: ValidatorSet, chain_id: str,
                   verify: VerifyFn) -> None:
    """Raise :class:`InvalidEvidence` unless ``ev`` proves a double sign by a member of
    ``vset``: same validator, height, round and type, different values, both signed."""
    a, b = ev.vote_a, ev.vote_b
    if (a.validator != b.validator or a.height != b.height or a.round != b.round
            or a.type != b.type):
        raise InvalidEvidence("votes are not for the same validator/height/round/type")
    if a.value_id == b.value_id:
        raise InvalidEvidence("votes are for the same value")
    if not (_verify_vote(vset, chain_id, a, verify) and _verify_vote(vset, chain_id, b, verify)):
        raise InvalidEvidence("a vote is not validly signed by a validator of the set")
