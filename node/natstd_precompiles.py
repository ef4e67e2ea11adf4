"""Precompiles for the national standards the consortium's contracts need.

Three contracts at fixed addresses, called like Ethereum's ``sha256`` or ``ecrecover``
(raw input, no function selector), each charging its gas before it computes:

* ``0x…0a1200``, GB 32100 credit-code check: exactly 32 bytes, a member id (18
  characters, 14 zero bytes) -> word 1 if valid, else 0; 200 gas.
* ``0x…0a1201``, SM3 (GB/T 32905): any bytes -> the 32-byte digest; 60 gas + 12 per
  32-byte word.
* ``0x…0A1202``, SM2 verification (GB/T 32918.2) with the default user id
  ``1234567812345678``: ``x‖y‖r‖s`` (4 × 32 bytes) then the message -> word 1 / 0;
  6,000 gas + 12 per message word.

A wrong input length (credit code not 32 bytes, SM2 input under 128 bytes) is an
exceptional halt, which takes all the call's gas, as for any failed precompile; a bad
signature, key or code is not an error: the answer is 0.

Prices follow this chain's rule (docs/chain-core.md, "Bounded work: gas caps"): a
precompile must burn gas at least as fast as the interpreter's worst case, ~4.5 Mgas per
CPU-second, i.e. gas >= 4.5 × its CPU microseconds. Measured here (``python -m
yilian.bench.evm_speed``): a credit-code check takes a few µs (200 gas leaves a wide
margin), SM3 a few µs per kilobyte, an SM2 verification ~360 µs (at least 1,620 gas; 6,000
leaves room for a slower validator).

Consensus: every validator must give the same answer. SM2 verification runs in OpenSSL,
after strict checks in Python that do not depend on its version: ``0 < r, s < n``,
``(r + s) mod n != 0`` (GB/T 32918.2, B5), the key a point of the curve with coordinates
below ``p``; an internal OpenSSL failure raises instead of answering 0 (the block
fails on that node alone). :func:`self_test` runs the standards' vectors when the node
starts, so a node whose libcrypto answers wrongly stops instead of forking off on the
first call.
"""

from __future__ import annotations

from collections.abc import Callable

from eth.abc import ComputationAPI
from eth.exceptions import VMError
from eth_typing import Address

from yilian.crypto import sm2
from yilian.crypto.sm import sm3
from yilian.protocol.credit_code import is_valid_bytes32

CREDIT_CODE_ADDRESS = Address((0x0A1200).to_bytes(20, "big"))
SM3_ADDRESS = Address((0x0A1201).to_bytes(20, "big"))
SM2_VERIFY_ADDRESS = Address((0x0A1202).to_bytes(20, "big"))

CREDIT_CODE_GAS = 200
SM3_GAS, SM3_WORD_GAS = 60, 12
SM2_VERIFY_GAS, SM2_WORD_GAS = 6_000, 12

_TRUE = (1).to_bytes(32, "big")
_FALSE = bytes(32)


class PrecompileInputError(VMError):
    """The input has the wrong length for this precompile (an exceptional halt)."""


def _words(n: int) -> int:
    return (n + 31) // 32


def credit_code(computation: ComputationAPI) -> ComputationAPI:
    computation.consume_gas(CREDIT_CODE_GAS, reason="credit code precompile")
    data = bytes(computation.msg.data)
    if len(data) != 32:
        raise PrecompileInputError(f"the credit-code check takes 32 bytes, got {len(data)}")
    computation.output = _TRUE if is_valid_bytes32(data) else _FALSE
    return computation


def sm3_digest(computation: ComputationAPI) -> ComputationAPI:
    data = bytes(computation.msg.data)
    computation.consume_gas(SM3_GAS + SM3_WORD_GAS * _words(len(data)), reason="SM3 precompile")
    computation.output = sm3(data)
    return computation


def sm2_verify_input(data: bytes) -> bool:
    """The SM2 precompile's answer for its raw input (``x‖y‖r‖s‖message``), with the
    consensus-critical checks done here rather than left to OpenSSL."""
    if len(data) < 128:
        raise PrecompileInputError(f"SM2 verify takes x‖y‖r‖s (128 bytes) and a message, "
                                   f"got {len(data)} bytes")
    x, y = int.from_bytes(data[:32], "big"), int.from_bytes(data[32:64], "big")
    r, s = int.from_bytes(data[64:96], "big"), int.from_bytes(data[96:128], "big")
    if not (0 < r < sm2.N and 0 < s < sm2.N) or (r + s) % sm2.N == 0:
        return False
    if not (x < sm2.P and y < sm2.P) or (y * y - (x * x * x + sm2.A * x + sm2.B)) % sm2.P:
        return False
    # strict: a failure inside OpenSSL (not a wrong signature) raises SM2Error, which is
    # not a VMError: the transaction or block fails on this node instead of getting an
    # answer the other validators would not give.
    return sm2.verify(data[:64], data[128:], data[64:128], strict=True)


def sm2_verify(computation: ComputationAPI) -> ComputationAPI:
    data = bytes(computation.msg.data)
    computation.consume_gas(SM2_VERIFY_GAS + SM2_WORD_GAS * _words(max(0, len(data) - 128)),
                            reason="SM2 verify precompile")
    computation.output = _TRUE if sm2_verify_input(data) else _FALSE
    return computation


NATSTD_PRECOMPILES: dict[Address, Callable[[ComputationAPI], ComputationAPI]] = {
    CREDIT_CODE_ADDRESS: credit_code,
    SM3_ADDRESS: sm3_digest,
    SM2_VERIFY_ADDRESS: sm2_verify,
}

# Known answers: SM3 of "abc" (GB/T 32905-2016, A.1); an SM2 signature with the default
# user id (GB/T 32918.5-2017, Annex A: key, "message digest", signature).
_SM3_ABC = bytes.fromhex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
_SM2_PUBLIC = bytes.fromhex(
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
_SM2_MESSAGE = b"message digest"
_SM2_SIGNATURE = bytes.fromhex(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA")


class SelfTestFailed(RuntimeError):
    """A national-standard precompile gave a wrong answer for a published vector."""


def self_test() -> None:
    """Run the published vectors through the precompiles' functions; raise
    :class:`SelfTestFailed` naming the one that answers wrongly (the node must not
    start: it would disagree with the other validators)."""
    good = _SM2_PUBLIC + _SM2_SIGNATURE + _SM2_MESSAGE
    bad = _SM2_PUBLIC + _SM2_SIGNATURE + _SM2_MESSAGE + b"!"
    checks = {
        "SM3 of 'abc'": sm3(b"abc") == _SM3_ABC,
        "SM2 verification of GB/T 32918.5 Annex A": sm2_verify_input(good),
        "SM2 refusal of an altered message": not sm2_verify_input(bad),
        "credit code 914403001922038216": is_valid_bytes32(b"914403001922038216".ljust(32, b"\0")),
        "credit code with a wrong check character":
            not is_valid_bytes32(b"914403001922038217".ljust(32, b"\0")),
    }
    wrong = [name for name, ok in checks.items() if not ok]
    if wrong:
        raise SelfTestFailed("the national-standard precompiles answer wrongly: "
                             + "; ".join(wrong) + f" (OpenSSL {sm2.openssl_version()}); "
                             "this node would disagree with the other validators")
