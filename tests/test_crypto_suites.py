"""Crypto suites (yilian.crypto.suites) and private-key files.

Vector sources: Ed25519 -- RFC 8032 Sec. 7.1 TEST 1 and TEST 2; SHA-256 -- FIPS 180-2
Appendix B.1 ("abc"); SM3 -- GB/T 32905-2016 Appendix A example 1; SM2 -- GB/T 32918.5-2017
Annex A (see tests/test_crypto_sm.py).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yilian.crypto import sm2
from yilian.crypto.suites import (
    SM,
    STANDARD,
    SUITES,
    KeyFilePermissionError,
    Suite,
    UnknownSuiteError,
    get_suite,
    load_private_key,
    save_private_key,
)

H = bytes.fromhex
ALL = [STANDARD, SM]
ids = [s.name for s in ALL]

# ------------------------------------------------------------------------------ vectors

RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]


@pytest.mark.parametrize("sk,pk,msg,sig", RFC8032)
def test_ed25519_rfc8032(sk: str, pk: str, msg: str, sig: str) -> None:
    assert STANDARD.public_key(H(sk)) == H(pk)
    assert STANDARD.sign(H(sk), H(msg)) == H(sig)  # Ed25519 is deterministic
    assert STANDARD.verify(H(pk), H(msg), H(sig))


def test_digests() -> None:
    assert STANDARD.digest(b"abc") == H(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert SM.digest(b"abc") == H(
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )


def test_sm_suite_annex_a() -> None:
    d = H("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
    pub = SM.public_key(d)
    sig = H(
        "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
        "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
    )
    assert SM.verify(pub, b"message digest", sig)


# --------------------------------------------------------------------------- properties


def test_registry() -> None:
    assert SUITES == {"standard": STANDARD, "sm": SM}
    assert get_suite("standard") is STANDARD and get_suite("sm") is SM
    for s in ALL:
        assert isinstance(s, Suite)
        assert (s.private_key_size, s.signature_size, s.digest_size) == (32, 64, 32)
    assert (STANDARD.public_key_size, SM.public_key_size) == (32, 64)


@pytest.mark.parametrize("name", ["SM", "sm2", "", "ed25519", None, 1])
def test_unknown_suite(name: object) -> None:
    with pytest.raises(UnknownSuiteError, match="known suites: 'sm', 'standard'"):
        get_suite(name)  # type: ignore[arg-type]


@pytest.mark.parametrize("suite", ALL, ids=ids)
@settings(max_examples=25, deadline=None)
@given(msg=st.binary(max_size=200))
def test_round_trip_and_tampering(suite: Suite, msg: bytes) -> None:
    k = suite.generate_private_key()
    assert len(k) == suite.private_key_size
    pub = suite.public_key(k)
    assert len(pub) == suite.public_key_size
    sig = suite.sign(k, msg)
    assert len(sig) == suite.signature_size
    assert suite.verify(pub, msg, sig)
    assert not suite.verify(pub, msg + b"\x00", sig)
    bad = bytearray(sig)
    bad[len(msg) % 64] ^= 0x01
    assert not suite.verify(pub, msg, bytes(bad))
    other = suite.public_key(suite.generate_private_key())
    assert not suite.verify(other, msg, sig)
    nid = suite.node_id(pub)
    assert len(nid) == 20 and nid == suite.digest(pub)[-20:]


def test_suites_do_not_cross_verify() -> None:
    k = STANDARD.generate_private_key()
    sig = STANDARD.sign(k, b"m")
    assert not SM.verify(STANDARD.public_key(k) * 2, b"m", sig)
    k2 = SM.generate_private_key()
    assert not STANDARD.verify(SM.public_key(k2)[:32], b"m", SM.sign(k2, b"m"))


junk = st.one_of(
    st.none(), st.integers(), st.text(max_size=70), st.binary(max_size=70), st.just(b"\x00" * 32)
)


@pytest.mark.parametrize("suite", ALL, ids=ids)
@settings(max_examples=200, deadline=None)
@given(pub=junk, msg=junk, sig=junk)
def test_verify_never_raises(suite: Suite, pub: object, msg: object, sig: object) -> None:
    assert suite.verify(pub, msg, sig) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("suite", ALL, ids=ids)
def test_invalid_keys_raise_value_error(suite: Suite) -> None:
    for bad in (b"", b"\x01" * 31, b"\x01" * 33):
        with pytest.raises(ValueError):
            suite.public_key(bad)
        with pytest.raises(ValueError):
            suite.sign(bad, b"m")
        with pytest.raises(ValueError):
            suite.node_id(bad)


def test_sm_node_id_rejects_off_curve_key() -> None:
    with pytest.raises(ValueError):
        SM.node_id(bytes(64))
    with pytest.raises(ValueError):
        SM.public_key(sm2.N.to_bytes(32, "big"))


# ---------------------------------------------------------------------------- key files


@pytest.fixture
def permissive_umask():  # type: ignore[no-untyped-def]
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("suite", ALL, ids=ids)
def test_key_file_round_trip(tmp_path: Path, suite: Suite, permissive_umask: None) -> None:
    k = suite.generate_private_key()
    p = tmp_path / "node.key"
    save_private_key(p, k)
    assert _mode(p) == 0o600
    assert p.read_text() == k.hex() + "\n"
    assert load_private_key(p) == k
    assert load_private_key(str(p), suite) == k


def test_key_file_not_overwritten(tmp_path: Path) -> None:
    p = tmp_path / "node.key"
    save_private_key(p, b"\x01" * 32)
    with pytest.raises(FileExistsError):
        save_private_key(p, b"\x02" * 32)
    assert load_private_key(p) == b"\x01" * 32
    save_private_key(p, b"\x02" * 32, overwrite=True)
    assert load_private_key(p) == b"\x02" * 32
    assert _mode(p) == 0o600
    assert sorted(x.name for x in tmp_path.iterdir()) == ["node.key"]


def test_overwrite_tightens_mode(tmp_path: Path) -> None:
    p = tmp_path / "node.key"
    p.write_text("00")
    p.chmod(0o644)
    save_private_key(p, b"\x03" * 32, overwrite=True)
    assert _mode(p) == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o601, 0o610, 0o777])
def test_key_file_permissions_refused(tmp_path: Path, mode: int) -> None:
    p = tmp_path / "node.key"
    save_private_key(p, b"\x01" * 32)
    p.chmod(mode)
    with pytest.raises(KeyFilePermissionError, match=r"chmod 600") as exc:
        load_private_key(p)
    assert f"{mode:04o}" in str(exc.value)
    assert isinstance(exc.value, PermissionError)


def test_key_file_owner_only_modes_accepted(tmp_path: Path) -> None:
    p = tmp_path / "node.key"
    save_private_key(p, b"\x01" * 32)
    p.chmod(0o400)
    assert load_private_key(p) == b"\x01" * 32


def test_key_file_symlink_checks_target(tmp_path: Path) -> None:
    target = tmp_path / "real.key"
    save_private_key(target, b"\x01" * 32)
    link = tmp_path / "link.key"
    link.symlink_to(target)
    assert load_private_key(link) == b"\x01" * 32
    target.chmod(0o644)
    with pytest.raises(KeyFilePermissionError):
        load_private_key(link)


@pytest.mark.parametrize("content", [b"", b"zz\n", b"\xff\xfe", b"abc\n"])
def test_key_file_bad_content(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "node.key"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(ValueError):
        load_private_key(p)


def test_key_file_suite_validation(tmp_path: Path) -> None:
    p = tmp_path / "node.key"
    save_private_key(p, (sm2.N - 1).to_bytes(32, "big"))  # n-1 is not a valid SM2 key
    assert load_private_key(p, STANDARD) == (sm2.N - 1).to_bytes(32, "big")
    with pytest.raises(ValueError, match="invalid for suite 'sm'"):
        load_private_key(p, SM)
    q = tmp_path / "short.key"
    save_private_key(q, b"\x01" * 16)
    with pytest.raises(ValueError, match="needs 32"):
        load_private_key(q, STANDARD)


def test_save_rejects_empty_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        save_private_key(tmp_path / "k", b"")
    assert not (tmp_path / "k").exists()
