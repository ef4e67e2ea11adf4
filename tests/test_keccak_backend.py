"""The node hashes with pysha3 (node/keccak_backend.py): the same Keccak-256 as
pycryptodome, eth-hash's default, on every input; only faster."""

from __future__ import annotations

from eth_hash.auto import keccak
from eth_hash.backends.pycryptodome import backend as cryptodome
from eth_hash.backends.pysha3 import backend as pysha3
from hypothesis import given, settings
from hypothesis import strategies as st

from yilian.node.keccak_backend import use_fastest_keccak


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=600), split=st.integers(0, 600))
def test_pysha3_and_pycryptodome_agree(data: bytes, split: int) -> None:
    assert pysha3.keccak256(data) == cryptodome.keccak256(data)
    pre = pysha3.preimage(data[:split])
    pre.update(data[split:])
    assert pre.digest() == cryptodome.keccak256(data) == pre.copy().digest()


def test_a_node_process_hashes_with_pysha3() -> None:
    assert use_fastest_keccak() == "pysha3"
    assert keccak.hasher == pysha3.keccak256
    assert keccak(b"abc").hex() == (
        "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")
