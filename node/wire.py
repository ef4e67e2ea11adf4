"""Node-to-node messages: one canonical msgpack shape per type, strict decoders.

Every body is a msgpack array with a fixed field order (the p2p layer frames and
encrypts it). Decoders check types and sizes and raise :class:`WireError` on anything
malformed; the caller drops the message and keeps the connection or closes it.

| type | body |
|---|---|
| TXS | ``[raw_tx, ...]`` |
| PROPOSAL | ``[height, round, value_id, valid_round, proposer, signature, block_rlp]`` |
| VOTE | ``[type, height, round, value_id or nil, validator, signature]`` |
| COMMIT | ``[certificate, block_rlp]`` (a decided block, for lagging peers) |
| STATUS | ``[height, head_hash]`` |
| SYNC_REQUEST | ``[from_height, count]`` |
| SYNC_RESPONSE | ``[[certificate, block_rlp], ...]`` |

A certificate is ``[height, round, value_id, [vote, ...]]`` with votes as in VOTE.
"""

from __future__ import annotations

from typing import Any

import rlp
from eth.abc import BlockAPI

from yilian.consensus import CommitCertificate, Proposal, Vote, VoteType
from yilian.node.genesis import YilianVM

TXS = 16
PROPOSAL = 17
VOTE = 18
COMMIT = 19
STATUS = 20
SYNC_REQUEST = 21
SYNC_RESPONSE = 22

MAX_SYNC_BLOCKS = 32
MAX_SYNC_RESPONSE_BYTES = 16 * 1024 * 1024
# Every member must use the same frame limit: it carries a whole block (proposal) or a
# sync response (at most MAX_SYNC_RESPONSE_BYTES beyond its first block).
MAX_FRAME_BYTES = 64 * 1024 * 1024
MAX_TXS_PER_MESSAGE = 1000
MAX_BLOCK_BYTES = 32 * 1024 * 1024
MAX_VOTES_PER_CERT = 1000


class WireError(ValueError):
    """A peer message is malformed; the message says which field."""


def _int(v: Any, what: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise WireError(f"{what}: expected an integer in {lo}..{hi}")
    return v


def _bytes(v: Any, what: str, length: int | None = None, max_len: int = 1024) -> bytes:
    if not isinstance(v, bytes):
        raise WireError(f"{what}: expected bytes")
    if length is not None and len(v) != length:
        raise WireError(f"{what}: expected {length} bytes, got {len(v)}")
    if len(v) > max_len:
        raise WireError(f"{what}: longer than {max_len} bytes")
    return v


def _list(v: Any, what: str, n: int | None = None, max_len: int = 100_000) -> list[Any]:
    if not isinstance(v, (list, tuple)):
        raise WireError(f"{what}: expected an array")
    if n is not None and len(v) != n:
        raise WireError(f"{what}: expected {n} fields, got {len(v)}")
    if len(v) > max_len:
        raise WireError(f"{what}: more than {max_len} items")
    return list(v)


# -- votes, proposals, certificates ----------------------------------------------------------
def encode_vote(vote: Vote) -> list[Any]:
    return [int(vote.type), vote.height, vote.round, vote.value_id, vote.validator,
            vote.signature]


def decode_vote(body: Any) -> Vote:
    t, h, r, value_id, validator, sig = _list(body, "vote", 6)
    t = _int(t, "vote.type")
    if t not in (int(VoteType.PREVOTE), int(VoteType.PRECOMMIT)):
        raise WireError("vote.type: must be 2 (prevote) or 3 (precommit)")
    return Vote(VoteType(t), _int(h, "vote.height", 1), _int(r, "vote.round", 0, 2**31),
                None if value_id is None else _bytes(value_id, "vote.value_id", 32),
                _bytes(validator, "vote.validator", 20), _bytes(sig, "vote.signature", max_len=128))


def encode_proposal(p: Proposal, block: BlockAPI) -> list[Any]:
    return [p.height, p.round, p.value_id, p.valid_round, p.proposer, p.signature,
            encode_block(block)]


def decode_proposal(body: Any) -> tuple[Proposal, BlockAPI]:
    h, r, value_id, vr, proposer, sig, block_rlp = _list(body, "proposal", 7)
    proposal = Proposal(_int(h, "proposal.height", 1), _int(r, "proposal.round", 0, 2**31),
                        _bytes(value_id, "proposal.value_id", 32),
                        _int(vr, "proposal.valid_round", -1, 2**31),
                        _bytes(proposer, "proposal.proposer", 20),
                        _bytes(sig, "proposal.signature", max_len=128))
    block = decode_block(block_rlp)
    if block.hash != proposal.value_id or block.number != proposal.height:
        raise WireError("proposal: the block does not match the proposal's height and value id")
    return proposal, block


def encode_certificate(cert: CommitCertificate) -> list[Any]:
    return [cert.height, cert.round, cert.value_id, [encode_vote(v) for v in cert.votes]]


def decode_certificate(body: Any) -> CommitCertificate:
    h, r, value_id, votes = _list(body, "certificate", 4)
    return CommitCertificate(
        _int(h, "certificate.height", 1), _int(r, "certificate.round", 0, 2**31),
        _bytes(value_id, "certificate.value_id", 32),
        tuple(decode_vote(v) for v in _list(votes, "certificate.votes",
                                            max_len=MAX_VOTES_PER_CERT)))


# -- blocks and transactions -------------------------------------------------------------------
def encode_block(block: BlockAPI) -> bytes:
    return bytes(rlp.encode(block))


def decode_block(data: Any) -> BlockAPI:
    raw = _bytes(data, "block", max_len=MAX_BLOCK_BYTES)
    try:
        block: BlockAPI = rlp.decode(raw, sedes=YilianVM.get_block_class())
    except Exception as exc:  # rlp raises several kinds on garbage
        raise WireError(f"block: not a valid block encoding ({type(exc).__name__})") from exc
    return block


def decode_txs(body: Any) -> list[bytes]:
    return [_bytes(t, "tx", max_len=128 * 1024)
            for t in _list(body, "txs", max_len=MAX_TXS_PER_MESSAGE)]


def decode_commit(body: Any) -> tuple[CommitCertificate, BlockAPI]:
    cert, block_rlp = _list(body, "commit", 2)
    certificate = decode_certificate(cert)
    block = decode_block(block_rlp)
    if block.hash != certificate.value_id or block.number != certificate.height:
        raise WireError("commit: the block does not match its certificate")
    return certificate, block


def decode_status(body: Any) -> tuple[int, bytes]:
    h, head = _list(body, "status", 2)
    return _int(h, "status.height"), _bytes(head, "status.head", 32)


def decode_sync_request(body: Any) -> tuple[int, int]:
    start, count = _list(body, "sync_request", 2)
    return _int(start, "sync_request.from", 1), _int(count, "sync_request.count", 1,
                                                     MAX_SYNC_BLOCKS)


def decode_sync_response(body: Any) -> list[tuple[CommitCertificate, BlockAPI]]:
    return [decode_commit(item) for item in _list(body, "sync_response",
                                                  max_len=MAX_SYNC_BLOCKS)]
