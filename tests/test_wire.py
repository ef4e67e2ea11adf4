"""Node-to-node message codecs: canonical round trips; arbitrary input only ever raises
WireError (a malformed peer message is dropped, never crashes the node)."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from yilian.consensus import CommitCertificate, Proposal, Vote, VoteType
from yilian.node import wire

VOTE = Vote(VoteType.PRECOMMIT, 7, 2, b"\x11" * 32, b"\x22" * 20, b"\x33" * 64)


def test_vote_and_certificate_round_trip() -> None:
    assert wire.decode_vote(wire.encode_vote(VOTE)) == VOTE
    nil = Vote(VoteType.PREVOTE, 7, 0, None, b"\x22" * 20, b"\x01" * 64)
    assert wire.decode_vote(msgpack.unpackb(msgpack.packb(wire.encode_vote(nil)))) == nil
    cert = CommitCertificate(7, 2, b"\x11" * 32, (VOTE,))
    assert wire.decode_certificate(wire.encode_certificate(cert)) == cert


def test_proposal_must_match_its_block() -> None:
    from eth.chains.base import MiningChain
    from eth.db.atomic import AtomicDB

    from yilian.network_configs.local import dev_accounts, local_genesis
    from yilian.node.genesis import YilianVM, parse_genesis

    genesis = parse_genesis(local_genesis(dev_accounts(1)))
    chain = MiningChain.configure(vm_configuration=((0, YilianVM),),
                                  chain_id=genesis.chain_id).from_genesis(
        AtomicDB(), genesis.genesis_params(), genesis.genesis_state())
    block = chain.get_canonical_block_by_number(0)
    p = Proposal(1, 0, block.hash, -1, b"\x22" * 20, b"\x33" * 64)
    try:
        wire.decode_proposal(wire.encode_proposal(p, block))
    except wire.WireError as exc:
        assert "does not match" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a proposal whose block has another height was accepted")


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.binary(max_size=80)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=8), max_leaves=30)

DECODERS = [wire.decode_vote, wire.decode_certificate, wire.decode_proposal, wire.decode_commit,
            wire.decode_status, wire.decode_sync_request, wire.decode_sync_response,
            wire.decode_txs, wire.decode_block]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DECODERS), json_like)
def test_decoders_only_raise_wire_error(decoder: Any, body: Any) -> None:
    with contextlib.suppress(wire.WireError):
        decoder(body)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 5), st.binary(max_size=8))
def test_mutated_votes_are_rejected_or_decoded(field: int, junk: bytes) -> None:
    body = wire.encode_vote(VOTE)
    body[field] = junk
    try:
        vote = wire.decode_vote(body)
    except wire.WireError:
        return
    assert isinstance(vote, Vote)
