"""Property tests for ``yilian.node.mempool.decode_transaction``.

Whatever bytes arrive, the decoder either returns an authenticated transaction whose hash is
keccak(raw) and whose sender recovers, or raises ``Rejected``; nothing else escapes.
"""

from __future__ import annotations

import rlp
from eth.abc import SignedTransactionAPI
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_canonical_address
from helpers import ADDRESSES, KEYS, sign, sign_put, sign_transfer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from yilian.network_configs.local import LOCAL_CHAIN_ID
from yilian.node.mempool import Rejected, decode_transaction

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_BYTES = 4096


def _type4(key: str, nonce: int) -> bytes:
    auth = Account.sign_authorization(
        {"chainId": LOCAL_CHAIN_ID, "address": ADDRESSES[3], "nonce": nonce + 1}, key)
    return sign(key, {
        "type": 4, "chainId": LOCAL_CHAIN_ID, "nonce": nonce, "to": ADDRESSES[2], "value": 0,
        "gas": 100_000, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
        "authorizationList": [auth],
    })


# (type, signer index, raw) for every transaction type the node accepts.
VALID: list[tuple[int, int, bytes]] = [
    (0, 0, sign_transfer(KEYS[0], 0, tx_type=0)),
    (0, 1, sign_transfer(KEYS[1], 7, value=10**18, tx_type=0)),
    (1, 0, sign_transfer(KEYS[0], 1, tx_type=1)),
    (1, 2, sign(KEYS[2], {
        "type": 1, "chainId": LOCAL_CHAIN_ID, "nonce": 3, "to": ADDRESSES[4], "value": 5,
        "gas": 60_000, "gasPrice": 0,
        "accessList": [{"address": ADDRESSES[5], "storageKeys": ["0x" + "11" * 32]}],
    })),
    (2, 0, sign_transfer(KEYS[0], 2, tx_type=2)),
    (2, 3, sign_put(KEYS[3], 0, b"key", b"value")),
    (4, 0, _type4(KEYS[0], 4)),
]


def _decode(raw: bytes, max_bytes: int = MAX_BYTES) -> SignedTransactionAPI:
    return decode_transaction(raw, chain_id=LOCAL_CHAIN_ID, max_bytes=max_bytes)


def _check(raw: bytes) -> bool:
    """The decoder contract; returns True when the bytes were accepted."""
    try:
        tx = _decode(raw)
    except Rejected as exc:
        assert exc.reason and exc.message
        return False
    assert bytes(tx.hash) == keccak(raw), "accepted tx hash is not keccak(raw)"
    assert len(bytes(tx.sender)) == 20
    assert tx.encode() == raw, "accepted a non-canonical encoding"
    return True


def _split(raw: bytes) -> tuple[bytes, list[object]]:
    """(type prefix, rlp items) of a raw transaction."""
    if raw[0] >= 0xC0:
        return b"", list(rlp.decode(raw))
    return raw[:1], list(rlp.decode(raw[1:]))


def _other_parity(tx_type: int, v: object) -> int:
    """The recovery id that goes with the negated s (legacy v is 35 + 2 * chain id + parity)."""
    v_int = int.from_bytes(v, "big")  # type: ignore[call-overload]
    if tx_type == 0:
        return v_int + 1 if v_int % 2 else v_int - 1
    return 1 - v_int


# -- valid transactions ------------------------------------------------------------------------


def test_every_supported_type_round_trips() -> None:
    for tx_type, signer, raw in VALID:
        tx = _decode(raw)
        assert tx.encode() == raw, tx_type
        assert bytes(tx.hash) == keccak(raw)
        assert bytes(tx.sender) == to_canonical_address(ADDRESSES[signer])
        assert tx.chain_id == LOCAL_CHAIN_ID
        assert (raw[0] if raw[0] < 0x80 else 0) == tx_type


def test_known_rejections_carry_reason_tags() -> None:
    cases = {
        b"": "invalid_encoding",
        b"\x03" + rlp.encode([1, 2, 3]): "unsupported_type",
        b"\x05\xc0": "invalid_encoding",
        b"\xc0": "invalid_encoding",
        sign_transfer(KEYS[0], 0, chain_id=None, tx_type=0): "unprotected",
        sign_transfer(KEYS[0], 0, chain_id=1, tx_type=0): "wrong_chain",
        sign_transfer(KEYS[0], 0, chain_id=1, tx_type=2): "wrong_chain",
        b"\x02" + b"\xff" * (MAX_BYTES + 1): "oversized",
    }
    for raw, reason in cases.items():
        try:
            _decode(raw)
        except Rejected as exc:
            assert exc.reason == reason, (raw[:8], exc.reason, exc.message)
        else:
            raise AssertionError(f"accepted {raw[:8].hex()}")


def test_zero_or_out_of_range_signature_values_are_rejected() -> None:
    for _, _, raw in VALID:
        prefix, items = _split(raw)
        v, r, s = items[-3:]
        for bad_r, bad_s in ((r, b""), (b"", s), (SECP256K1_N.to_bytes(32, "big"), s),
                             (r, SECP256K1_N.to_bytes(32, "big"))):
            bad = prefix + rlp.encode([*items[:-3], v, bad_r, bad_s])
            try:
                _decode(bad)
            except Rejected as exc:
                assert exc.reason in ("invalid_signature", "invalid_transaction"), exc.reason
            else:
                raise AssertionError("accepted a transaction with r or s out of range")


def test_high_s_signatures_are_rejected() -> None:
    """EIP-2: s must be in the lower half of the curve order, or every transaction has a
    second valid encoding (same sender, nonce and effect, different hash) that anyone can
    make from a pending one and use to replace it in the mempool."""
    accepted = []
    for tx_type, _, raw in VALID:
        prefix, items = _split(raw)
        v, r, s = items[-3:]
        high_s = (SECP256K1_N - int.from_bytes(s, "big")).to_bytes(32, "big")
        twin = prefix + rlp.encode([*items[:-3], _other_parity(tx_type, v), r, high_s])
        try:
            tx = _decode(twin)
        except Rejected:
            continue
        assert bytes(tx.sender) == bytes(_decode(raw).sender)  # same sender, other hash
        accepted.append(tx_type)
    assert not accepted, f"high-s twins of valid transactions accepted for types {accepted}"


# -- fuzzing -----------------------------------------------------------------------------------


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
@example(b"")
@example(b"\x00")
@example(b"\x01\xc0")
@example(b"\x02\xc0")
@example(b"\x04\xc0")
@example(b"\x7f")
@example(b"\x80")
def test_arbitrary_bytes_decode_or_reject(raw: bytes) -> None:
    _check(raw)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)),
                                        min_size=1, max_size=4))
def test_byte_flips_decode_or_reject(valid: tuple[int, int, bytes],
                                     flips: list[tuple[int, int]]) -> None:
    _, _, raw = valid
    mutated = bytearray(raw)
    for pos, mask in flips:
        mutated[pos % len(mutated)] ^= mask
    _check(bytes(mutated))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.integers(0, 10**6), st.binary(max_size=40))
def test_truncations_and_extensions_decode_or_reject(valid: tuple[int, int, bytes], cut: int,
                                                     tail: bytes) -> None:
    _, _, raw = valid
    truncated = raw[: cut % len(raw)]
    assert not _check(truncated), "accepted a truncated transaction"
    if tail:
        assert not _check(raw + tail), "accepted a transaction with trailing bytes"
    _check(truncated + tail)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.data())
def test_field_mutations_decode_or_reject(valid: tuple[int, int, bytes],
                                          data: st.DataObject) -> None:
    """Re-encode with one RLP field replaced by other bytes, ints or lists (well-formed RLP,
    wrong content): still only a valid tx or Rejected."""
    _, _, raw = valid
    prefix, items = _split(raw)
    index = data.draw(st.integers(0, len(items) - 1))
    replacement = data.draw(st.one_of(
        st.binary(max_size=40),
        st.integers(0, 2**300).map(lambda n: n.to_bytes((n.bit_length() + 7) // 8, "big")),
        st.lists(st.binary(max_size=33), max_size=3),
    ))
    items[index] = replacement
    _check(prefix + rlp.encode(items))
