"""Vote keeping of one height: which validator voted what, and how much power backs each
(round, type, value) and each (round, type).

A :class:`VoteBook` is immutable: :meth:`VoteBook.add` returns a new book. It follows the
counting rules stated in ``machine``'s docstring: the first vote per (round, type,
validator) counts for its value and once for "any"; an equivocating validator's other
votes (at most ``max_conflicting`` per slot) count for *their* value only, and the first
equivocation per slot is reported once as evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from yilian.consensus.types import DuplicateVoteEvidence, ValidatorSet, Vote, VoteType

VoteKey = tuple[int, VoteType, bytes]  # (round, type, validator)
TallyKey = tuple[int, VoteType, bytes | None]  # (round, type, value_id)


@dataclass(frozen=True)
class VoteBook:
    """``votes`` the first vote per (round, type, validator) and ``conflicts`` its
    equivocating others; ``tally`` the power per (round, type, value) (a validator counts
    once per value) and ``type_power`` per (round, type) (a validator counts once);
    ``senders`` the validators heard from per round (for the f+1 round skip); ``reported``
    the slots already reported as equivocation. Mappings are never mutated."""

    votes: Mapping[VoteKey, Vote] = field(default_factory=dict)
    conflicts: Mapping[VoteKey, tuple[Vote, ...]] = field(default_factory=dict)
    tally: Mapping[TallyKey, int] = field(default_factory=dict)
    type_power: Mapping[tuple[int, VoteType], int] = field(default_factory=dict)
    senders: Mapping[int, frozenset[bytes]] = field(default_factory=dict)
    reported: frozenset[VoteKey] = frozenset()

    def power(self, r: int, typ: VoteType, value: bytes | None) -> int:
        """Power of the distinct validators that voted ``typ`` for ``value`` in round ``r``."""
        return self.tally.get((r, typ, value), 0)

    def any_power(self, r: int, typ: VoteType) -> int:
        """Power of the distinct validators that voted ``typ`` (any value) in round ``r``."""
        return self.type_power.get((r, typ), 0)

    def vote_for(self, key: VoteKey, value: bytes | None) -> Vote | None:
        """The vote in slot ``key`` for ``value`` (first or conflicting), if any."""
        first = self.votes.get(key)
        if first is not None and first.value_id == value:
            return first
        return next((v for v in self.conflicts.get(key, ()) if v.value_id == value), None)

    def certificate_votes(self, vset: ValidatorSet, r: int, value: bytes) -> tuple[Vote, ...]:
        """The precommits for ``value`` in round ``r``, in the validator set's order."""
        return tuple(vote for val in vset.validators
                     if (vote := self.vote_for((r, VoteType.PRECOMMIT, val.address), value))
                     is not None)

    def with_sender(self, r: int, who: bytes) -> VoteBook:
        cur = self.senders.get(r, frozenset())
        if who in cur:
            return self
        return replace(self, senders={**self.senders, r: cur | {who}})

    def add(self, vote: Vote, power: int, max_conflicting: int
            ) -> tuple[VoteBook, DuplicateVoteEvidence | None]:
        """Count ``vote`` (by a validator of ``power``). Returns the new book (``self`` if
        the vote changes nothing: a duplicate, or a conflicting vote over the bound) and
        the evidence to report, if this is the slot's first equivocation."""
        key: VoteKey = (vote.round, VoteType(vote.type), vote.validator)
        tkey: TallyKey = (vote.round, key[1], vote.value_id)
        prev = self.votes.get(key)
        if prev is None:
            pkey = (vote.round, key[1])
            book = replace(
                self, votes={**self.votes, key: vote},
                tally={**self.tally, tkey: self.tally.get(tkey, 0) + power},
                type_power={**self.type_power, pkey: self.type_power.get(pkey, 0) + power})
            return book.with_sender(vote.round, vote.validator), None
        others = self.conflicts.get(key, ())
        if prev.value_id == vote.value_id or any(o.value_id == vote.value_id for o in others):
            return self, None  # duplicate
        evidence = None
        book = self
        if key not in self.reported:  # equivocation: report once per slot
            evidence = DuplicateVoteEvidence(prev, vote)
            book = replace(book, reported=book.reported | {key})
        if len(others) >= max_conflicting:
            return book, evidence
        return replace(book, conflicts={**book.conflicts, key: (*others, vote)},
                       tally={**book.tally, tkey: book.tally.get(tkey, 0) + power}), evidence
