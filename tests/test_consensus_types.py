"""Unit and property tests of yilian.consensus.types: validator sets, proposer rotation,
signing bytes, commit certificates and evidence."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from consensus_sim import SUITES, SignatureSuite, Signer
from hypothesis import given, settings
from hypothesis import strategies as st

from yilian.consensus import (
    CommitCertificate,
    DuplicateVoteEvidence,
    InvalidCertificate,
    InvalidEvidence,
    InvalidValidatorSet,
    Proposal,
    Validator,
    ValidatorSet,
    Vote,
    VoteType,
    check_certificate,
    check_evidence,
    proposal_sign_bytes,
    proposer,
    proposer_schedule,
    verify_certificate,
    vote_sign_bytes,
)

CHAIN = "test-chain"


def vset_of(powers: list[int]) -> ValidatorSet:
    return ValidatorSet(tuple(Validator(bytes([i + 1]) * 20, bytes([i + 1]) * 32, p)
                              for i, p in enumerate(powers)))


def test_thresholds() -> None:
    v4 = vset_of([1, 1, 1, 1])
    assert (v4.total_power, v4.quorum, v4.f_plus_one) == (4, 3, 2)
    v7 = vset_of([1] * 7)
    assert (v7.quorum, v7.f_plus_one) == (5, 3)
    w = vset_of([1, 2, 3, 4])
    assert (w.total_power, w.quorum, w.f_plus_one) == (10, 7, 4)
    v3 = vset_of([1, 1, 1])
    assert v3.quorum == 3  # strictly more than 2/3 of 3


@pytest.mark.parametrize("bad", [[], [0], [1, -1]])
def test_invalid_validator_sets(bad: list[int]) -> None:
    with pytest.raises(InvalidValidatorSet):
        vset_of(bad)


def test_duplicate_address_rejected() -> None:
    v = Validator(b"a" * 20, b"k" * 32, 1)
    with pytest.raises(InvalidValidatorSet):
        ValidatorSet((v, v))


def test_proposer_matches_hand_computed_cometbft_sequence() -> None:
    # powers A=1, B=2, C=3; priorities worked by hand (ties -> smaller address):
    # [1,2,3]->C, [2,4,0]->B, [3,0,3]->A (tie), [-2,2,6]->C, [-1,4,3]->B, [0,0,6]->C
    vs = vset_of([1, 2, 3])
    a, b, c = (v.address for v in vs.validators)
    assert proposer_schedule(vs) == (c, b, a, c, b, c)
    assert [proposer(vs, h, 0) for h in range(1, 8)] == [c, b, a, c, b, c, c]


def test_proposer_round_advances_like_height() -> None:
    vs = vset_of([1, 2, 3, 4])
    for h in range(1, 30):
        for r in range(5):
            assert proposer(vs, h, r) == proposer(vs, h + r, 0)


def test_proposer_independent_of_listing_order() -> None:
    powers = [3, 1, 2, 2]
    vs = vset_of(powers)
    rev = ValidatorSet(tuple(reversed(vs.validators)))
    assert proposer_schedule(vs) == proposer_schedule(rev)


@settings(max_examples=60, deadline=None)
@given(powers=st.lists(st.integers(1, 12), min_size=1, max_size=10))
def test_proposer_weighted_and_fair(powers: list[int]) -> None:
    """Over any window of one period (total/gcd heights) each validator proposes exactly
    power/gcd times; over many heights the share is proportional to power."""
    vs = vset_of(powers)
    g = math.gcd(*powers)
    period = sum(powers) // g
    for start in (1, 7, 123):
        counts = Counter(proposer(vs, h, 0) for h in range(start, start + period))
        assert all(counts[v.address] == v.power // g for v in vs.validators)
    many = Counter(proposer(vs, h, 0) for h in range(1, 10 * period + 1))
    assert all(many[v.address] == 10 * v.power // g for v in vs.validators)


def test_sign_bytes_canonical_and_field_sensitive() -> None:
    v = Vote(VoteType.PREVOTE, 5, 2, b"\x11" * 32, b"\x01" * 20, b"sig")
    base = vote_sign_bytes(CHAIN, v)
    assert base == vote_sign_bytes(CHAIN, Vote(VoteType.PREVOTE, 5, 2, b"\x11" * 32,
                                               b"\x01" * 20, b"other-sig"))
    variants = [
        Vote(VoteType.PRECOMMIT, 5, 2, b"\x11" * 32, b"\x01" * 20),
        Vote(VoteType.PREVOTE, 6, 2, b"\x11" * 32, b"\x01" * 20),
        Vote(VoteType.PREVOTE, 5, 3, b"\x11" * 32, b"\x01" * 20),
        Vote(VoteType.PREVOTE, 5, 2, None, b"\x01" * 20),
        Vote(VoteType.PREVOTE, 5, 2, b"\x11" * 32, b"\x02" * 20),
    ]
    assert len({base, *(vote_sign_bytes(CHAIN, x) for x in variants)}) == 6
    assert vote_sign_bytes("other-chain", v) != base
    p = Proposal(5, 2, b"\x11" * 32, -1, b"\x01" * 20)
    pb = proposal_sign_bytes(CHAIN, p)
    assert pb != proposal_sign_bytes(CHAIN, Proposal(5, 2, b"\x11" * 32, 1, b"\x01" * 20))
    assert pb != base


# --- certificates with real signatures ------------------------------------------------------


def signed_set(suite: SignatureSuite, n: int) -> tuple[ValidatorSet, list[Signer]]:
    keys = [suite.keygen(bytes([i + 1]) * 32) for i in range(n)]
    vs = ValidatorSet(tuple(Validator(bytes([i + 1]) * 20, keys[i][1], 1) for i in range(n)))
    return vs, [k[0] for k in keys]


def precommit(suite_signers: list[Signer], vs: ValidatorSet, i: int, h: int, r: int,
              value: bytes | None) -> Vote:
    v = Vote(VoteType.PRECOMMIT, h, r, value, vs.validators[i].address)
    return Vote(v.type, h, r, value, v.validator,
                suite_signers[i].sign(vote_sign_bytes(CHAIN, v)))


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_certificate_verification(suite: SignatureSuite) -> None:
    vs, signers = signed_set(suite, 4)
    val = b"\xaa" * 32
    votes = tuple(precommit(signers, vs, i, 3, 1, val) for i in range(4))
    ok = CommitCertificate(3, 1, val, votes[:3])
    assert verify_certificate(ok, vs, CHAIN, suite.verify)
    check_certificate(CommitCertificate(3, 1, val, votes), vs, CHAIN, suite.verify)

    def rejected(cert: CommitCertificate, chain: str = CHAIN) -> bool:
        with pytest.raises(InvalidCertificate):
            check_certificate(cert, vs, chain, suite.verify)
        return not verify_certificate(cert, vs, chain, suite.verify)

    assert rejected(CommitCertificate(3, 1, val, votes[:2]))  # 2/4 is not > 2/3
    assert rejected(CommitCertificate(3, 1, val, (votes[0], votes[0], votes[1])))  # duplicate
    assert rejected(CommitCertificate(3, 1, val, votes[:3]), chain="other")  # wrong chain
    assert rejected(CommitCertificate(3, 2, val, votes[:3]))  # wrong round
    assert rejected(CommitCertificate(4, 1, val, votes[:3]))  # wrong height
    assert rejected(CommitCertificate(3, 1, b"\xbb" * 32, votes[:3]))  # wrong value
    forged = Vote(VoteType.PRECOMMIT, 3, 1, val, votes[2].validator, votes[1].signature)
    assert rejected(CommitCertificate(3, 1, val, (votes[0], votes[1], forged)))
    outsider_set, outsider_signers = signed_set(suite, 5)
    outsider = precommit(outsider_signers, outsider_set, 4, 3, 1, val)
    assert rejected(CommitCertificate(3, 1, val, (votes[0], votes[1], outsider)))
    prevote = Vote(VoteType.PREVOTE, 3, 1, val, votes[2].validator, votes[2].signature)
    assert rejected(CommitCertificate(3, 1, val, (votes[0], votes[1], prevote)))


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_weighted_certificate(suite: SignatureSuite) -> None:
    keys = [suite.keygen(bytes([i + 1]) * 32) for i in range(3)]
    vs = ValidatorSet(tuple(Validator(bytes([i + 1]) * 20, keys[i][1], p)
                            for i, p in enumerate([5, 1, 1])))
    signers = [k[0] for k in keys]
    val = b"\xaa" * 32
    big = precommit(signers, vs, 0, 1, 0, val)
    small = (precommit(signers, vs, 1, 1, 0, val), precommit(signers, vs, 2, 1, 0, val))
    assert vs.quorum == 5
    assert verify_certificate(CommitCertificate(1, 0, val, (big,)), vs, CHAIN, suite.verify)
    assert not verify_certificate(CommitCertificate(1, 0, val, small), vs, CHAIN, suite.verify)


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_evidence_check(suite: SignatureSuite) -> None:
    vs, signers = signed_set(suite, 4)
    a = precommit(signers, vs, 1, 2, 0, b"\x01" * 32)
    b = precommit(signers, vs, 1, 2, 0, None)
    check_evidence(DuplicateVoteEvidence(a, b), vs, CHAIN, suite.verify)
    with pytest.raises(InvalidEvidence):
        check_evidence(DuplicateVoteEvidence(a, a), vs, CHAIN, suite.verify)
    with pytest.raises(InvalidEvidence):
        check_evidence(DuplicateVoteEvidence(a, precommit(signers, vs, 2, 2, 0, None)), vs,
                       CHAIN, suite.verify)
    unsigned = Vote(b.type, b.height, b.round, b.value_id, b.validator, b"\x00" * 64)
    with pytest.raises(InvalidEvidence):
        check_evidence(DuplicateVoteEvidence(a, unsigned), vs, CHAIN, suite.verify)
