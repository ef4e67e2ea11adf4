"""The state after one committed block, read straight from its tries: accounts, code and
storage words, with no virtual machine.

A view call through the EVM costs a millisecond or more of fixed interpreter overhead even
when it reads two storage words; reading those words from the state trie costs
microseconds, and nothing once they are memoised. :class:`HeadStates` keeps one
:class:`HeadState` per head block, so admission, the REST API and the key service read
contract storage (through :mod:`yilian.node.domain_readers`) and account nonces at
dictionary speed between two blocks.

Invariants:

* A :class:`HeadState` answers for exactly one state root, its header's, for as long as it
  lives: trie nodes are content-addressed and never deleted, so a later commit cannot
  change what it reads (a reader holding an older head keeps a consistent, older view).
* Answers equal py-evm's ``state.get_storage`` / ``get_nonce`` / ``get_balance`` /
  ``get_code`` on the same root (``tests/test_head_state.py``).
* Memoised words and accounts are bounded (:data:`MEMO_WORDS` each); past it a memo
  restarts empty.
* Thread-safe: trie reads only read the store, and the memo is a dict updated by single
  assignments.
"""

from __future__ import annotations

from typing import Protocol

import rlp
from eth.abc import BlockHeaderAPI
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account
from eth_hash.auto import keccak
from rlp.sedes import big_endian_int
from trie import HexaryTrie

from yilian.node.admission import AccountView

MEMO_WORDS = 100_000
WORD = 32


class StateDB(Protocol):
    def __getitem__(self, key: bytes) -> bytes: ...


class HeadSource(Protocol):
    """What :class:`HeadStates` needs of the chain."""

    def head(self) -> BlockHeaderAPI: ...

    def state_db(self) -> StateDB: ...


_EMPTY = Account(0, 0, BLANK_ROOT_HASH, EMPTY_SHA3)


class HeadState:
    """Accounts and storage of the state after block ``header``."""

    def __init__(self, db: StateDB, header: BlockHeaderAPI) -> None:
        self.header = header
        self._db = db
        self._accounts: dict[bytes, Account] = {}
        self._words: dict[tuple[bytes, int], int] = {}
        self._state = HexaryTrie(db, header.state_root)

    @property
    def timestamp(self) -> int:
        return int(self.header.timestamp)

    def _account(self, address: bytes) -> Account:
        found = self._accounts.get(address)
        if found is None:
            raw = self._state.get(keccak(address))
            found = rlp.decode(raw, sedes=Account) if raw else _EMPTY
            if len(self._accounts) >= MEMO_WORDS:
                self._accounts = {}
            self._accounts[address] = found
        return found

    def account(self, address: bytes) -> AccountView:
        acct = self._account(address)
        code = b"" if acct.code_hash == EMPTY_SHA3 else bytes(self._db[acct.code_hash])
        return AccountView(int(acct.nonce), int(acct.balance), code)

    def nonce(self, address: bytes) -> int:
        return int(self._account(address).nonce)

    def word(self, address: bytes, slot: int) -> int:
        """Storage word ``slot`` of the contract at ``address`` (0 where nothing is stored)."""
        key = (address, slot)
        value = self._words.get(key)
        if value is None:
            root = self._account(address).storage_root
            raw = b""
            if root != BLANK_ROOT_HASH:
                raw = HexaryTrie(self._db, root).get(keccak(slot.to_bytes(WORD, "big")))
            value = rlp.decode(raw, sedes=big_endian_int) if raw else 0
            if len(self._words) >= MEMO_WORDS:
                self._words = {}
            self._words[key] = value
        return value

    def word_bytes(self, address: bytes, slot: int) -> bytes:
        return self.word(address, slot).to_bytes(WORD, "big")

    def bytestring(self, address: bytes, slot: int, max_length: int) -> bytes:
        """A Vyper ``Bytes``/``String`` stored at ``slot``: its length word, then its data
        words, left-aligned. A length above ``max_length`` cannot be the contract's and
        raises ValueError."""
        length = self.word(address, slot)
        if length > max_length:
            raise ValueError(f"a byte string at slot {slot} claims {length} bytes, more than "
                             f"its type's {max_length}")
        words = (length + WORD - 1) // WORD
        data = b"".join(self.word_bytes(address, slot + 1 + i) for i in range(words))
        return data[:length]


class HeadStates:
    """One :class:`HeadState` per head block: :meth:`current` swaps in a new one when the
    head changes."""

    def __init__(self, source: HeadSource) -> None:
        self._source = source
        self._current: HeadState | None = None

    def current(self) -> HeadState:
        head = self._source.head()
        state = self._current
        if state is None or state.header.hash != head.hash:
            state = HeadState(self._source.state_db(), head)
            self._current = state
        return state
