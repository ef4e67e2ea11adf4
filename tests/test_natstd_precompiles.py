"""The national-standard precompiles, called through the EVM: standards' vectors, gmssl as
an independent SM2/SM3, the Vyper credit-code check as the reference, malformed inputs, gas."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gmssl.sm3 as gm_sm3
import pytest
from helpers import genesis_doc, make_node
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sm_vectors import ANNEX_MSG, ANNEX_PUB, ANNEX_SIG
from test_domain_contracts import Domain as Harness
from test_domain_contracts import _alloc, ids, ref_valid

from yilian.contracts.abi import contract_abi
from yilian.contracts.artifacts import load
from yilian.crypto import sm2
from yilian.node import natstd_precompiles as nat
from yilian.node.service import Node
from yilian.protocol.credit_code import is_valid_bytes32

SM3_A2_INPUT = bytes.fromhex("61626364" * 16)  # GB/T 32905-2016 A.2
SM3_A2_DIGEST = bytes.fromhex(
    "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732")
GAS = 1_000_000
REFERENCE = b"\x00" * 18 + b"\xc0\xde"  # CreditCodeReference, placed by the test genesis


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    with tempfile.TemporaryDirectory() as tmp:
        reference = {"0x" + REFERENCE.hex(): {
            "balance": "0x0", "storage": {},
            "code": "0x" + load("CreditCodeReference").deployed_bytecode.hex()}}
        n = make_node(Path(tmp), alloc=genesis_doc()["alloc"] | _alloc() | reference)
        try:
            yield n
        finally:
            n.stop()


def call(node: Node, address: bytes, data: bytes) -> Any:
    """A message call to ``address`` on the head state: the EVM dispatches precompiles."""
    core, head = node.core, node.core.head()
    tx = core.call_tx(b"\x01" * 20, address, data, head, GAS, nonce=0)
    return core.call(tx, head, GAS)


def answer(node: Node, address: bytes, data: bytes) -> bytes:
    c = call(node, address, data)
    assert c.is_success, c.error
    return bytes(c.output)


def word(flag: bool) -> bytes:
    return int(flag).to_bytes(32, "big")


def test_standard_vectors(node: Node) -> None:
    assert answer(node, nat.SM3_ADDRESS, b"abc").hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
    assert answer(node, nat.SM3_ADDRESS, SM3_A2_INPUT) == SM3_A2_DIGEST
    assert answer(node, nat.SM2_VERIFY_ADDRESS, ANNEX_PUB + ANNEX_SIG + ANNEX_MSG) == word(True)
    assert answer(node, nat.SM2_VERIFY_ADDRESS,
                  ANNEX_PUB + ANNEX_SIG + ANNEX_MSG[:-1]) == word(False)
    nat.self_test()


def test_gas_is_what_the_docs_say(node: Node) -> None:
    def used(address: bytes, data: bytes) -> int:
        c = call(node, address, data)
        assert c.is_success
        return int(c.get_gas_used())

    assert used(nat.CREDIT_CODE_ADDRESS, bytes(32)) == 200
    assert used(nat.SM3_ADDRESS, b"") == 60
    assert used(nat.SM3_ADDRESS, b"x" * 33) == 60 + 2 * 12
    assert used(nat.SM2_VERIFY_ADDRESS, ANNEX_PUB + ANNEX_SIG) == 6_000
    assert used(nat.SM2_VERIFY_ADDRESS, ANNEX_PUB + ANNEX_SIG + ANNEX_MSG) == 6_000 + 12


def test_wrong_lengths_halt_and_take_all_gas(node: Node) -> None:
    for address, data in ((nat.CREDIT_CODE_ADDRESS, bytes(31)),
                          (nat.CREDIT_CODE_ADDRESS, bytes(33)),
                          (nat.SM2_VERIFY_ADDRESS, bytes(127))):
        c = call(node, address, data)
        assert c.is_error and isinstance(c.error, nat.PrecompileInputError)
        assert c.get_gas_used() == c.msg.gas  # all the gas the call was given


N, P = sm2.N, sm2.P


def _sig(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@pytest.mark.parametrize("public,signature,why", [
    (ANNEX_PUB, _sig(0, 1), "r = 0"),
    (ANNEX_PUB, _sig(1, 0), "s = 0"),
    (ANNEX_PUB, _sig(N, 1), "r = n"),
    (ANNEX_PUB, _sig(1, N), "s = n"),
    (ANNEX_PUB, _sig(5, N - 5), "(r + s) mod n = 0"),
    (ANNEX_PUB[:32] + (int.from_bytes(ANNEX_PUB[32:], "big") ^ 1).to_bytes(32, "big"),
     ANNEX_SIG, "key off the curve"),
    (P.to_bytes(32, "big") + ANNEX_PUB[32:], ANNEX_SIG, "x = p"),
    (bytes(64), ANNEX_SIG, "the point at infinity's encoding"),
])
def test_malformed_signatures_and_keys_answer_false(node: Node, public: bytes,
                                                    signature: bytes, why: str) -> None:
    assert answer(node, nat.SM2_VERIFY_ADDRESS, public + signature + ANNEX_MSG) == word(False), why


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_sm2_and_sm3_agree_with_gmssl(message: bytes, tamper: bool) -> None:
    assert nat.sm3(message) == bytes.fromhex(gm_sm3.sm3_hash(list(message)))
    private = sm2.generate_private_key()
    public = sm2.public_key(private)
    signature = sm2.sign(private, message)
    signed = message + b"!" if tamper else message
    assert nat.sm2_verify_input(public + signature + signed) is (not tamper)
    from gmssl.sm2 import CryptSM2

    gm = CryptSM2(private_key=private.hex(), public_key=public.hex())
    assert gm.verify_with_sm3(signature.hex(), signed) is (not tamper)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=ids)
def test_credit_code_precompile_matches_the_vyper_check(node: Node, raw: bytes) -> None:
    """Differential: the precompile, CreditCodeReference.valid (the Vyper loop Members ran
    before, the executable reference), Members.valid_credit_code (which now calls the
    precompile), the Python check and an independent reference all agree."""
    expected = ref_valid(raw)
    assert answer(node, nat.CREDIT_CODE_ADDRESS, raw) == word(expected)
    selector = contract_abi("CreditCodeReference").encode_call("valid", raw)
    assert answer(node, REFERENCE, selector) == word(expected)
    assert Harness(node).call("Members", "valid_credit_code", raw) is expected
    assert is_valid_bytes32(raw) is expected


def test_a_wrong_signature_that_reaches_openssl_answers_false(node: Node) -> None:
    """On-curve key, r and s in range, (r + s) mod n != 0: only OpenSSL can say no."""
    forged = _sig(12345, 67890)
    assert nat.sm2_verify_input(ANNEX_PUB + forged + ANNEX_MSG) is False
    assert answer(node, nat.SM2_VERIFY_ADDRESS, ANNEX_PUB + forged + ANNEX_MSG) == word(False)


def test_an_openssl_failure_raises_instead_of_answering(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """A context OpenSSL cannot allocate is this machine's problem, not an invalid
    signature: the precompile must not answer 0 where the other validators answer 1."""
    good = ANNEX_PUB + ANNEX_SIG + ANNEX_MSG
    monkeypatch.setattr(sm2._lib, "EVP_MD_CTX_new", lambda: None)
    assert sm2.verify(ANNEX_PUB, ANNEX_MSG, ANNEX_SIG) is False  # the lenient API
    with pytest.raises(sm2.SM2Error, match="EVP_MD_CTX_new"):
        nat.sm2_verify_input(good)
    assert not isinstance(sm2.SM2Error("x"), nat.VMError)  # not an exceptional halt
