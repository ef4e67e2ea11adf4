"""EIP-1186 account and storage proofs: a walk of the committed state trie.

``eth_getProof`` answers with the Merkle-Patricia proof of one account and of some of its
storage slots against a block's state root; a client holding only the block header can
check every value it is given. The JSON-RPC layer parses the request and formats the
answer; the walk over the node's trie nodes is here.

Invariants:

* Only committed trie nodes are read (:meth:`yilian.node.storage.Store.committed_evm_db`),
  so a proof never names state of a block being built.
* An account or slot that does not exist is proven absent: the proof ends where the path
  leaves the trie, and its fields are an empty account's (zero balance and nonce, the
  empty code hash and storage root) or a zero value.
* Proof nodes are the RLP encodings of the trie nodes on the path from the root, in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import rlp
from eth.abc import AtomicDatabaseAPI
from eth.rlp.accounts import Account
from eth_hash.auto import keccak
from trie import HexaryTrie


@dataclass(frozen=True)
class StorageProof:
    """One storage slot's value and its proof against the account's storage root."""

    slot: int
    value: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class AccountProof:
    """An account's fields, its proof against a state root, and the proofs of some slots."""

    address: bytes
    proof: tuple[bytes, ...]
    balance: int
    nonce: int
    code_hash: bytes
    storage_root: bytes
    storage: tuple[StorageProof, ...]


def account_proof(db: AtomicDatabaseAPI, state_root: bytes, address: bytes,
                  slots: Iterable[int]) -> AccountProof:
    """The proof of ``address`` and of its storage ``slots`` in the state ``state_root``."""
    account_trie = HexaryTrie(db, state_root)
    key = keccak(address)
    proof = tuple(rlp.encode(node) for node in account_trie.get_proof(key))
    encoded = account_trie.get(key)
    account = rlp.decode(encoded, sedes=Account) if encoded else Account()
    storage_trie = HexaryTrie(db, account.storage_root)
    storage = []
    for slot in slots:
        slot_key = keccak(slot.to_bytes(32, "big"))
        raw = storage_trie.get(slot_key)
        value = rlp.decode(raw, sedes=rlp.sedes.big_endian_int) if raw else 0
        storage.append(StorageProof(slot, value, tuple(
            rlp.encode(node) for node in storage_trie.get_proof(slot_key))))
    return AccountProof(address=address, proof=proof, balance=account.balance,
                        nonce=account.nonce, code_hash=account.code_hash,
                        storage_root=account.storage_root, storage=tuple(storage))
