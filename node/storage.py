"""One LevelDB per node, one key prefix per concern, one atomic write batch per commit.

Every key starts with a table byte; most tables are split further by a sub-prefix. This
module is the only place a prefix is spelled: writers, readers and tests import the
constants below, and ``tests/test_storage_keys.py`` fails when two prefixes collide or a
module defines a prefix literal of its own. :data:`KEYS` lists every kind of key
(table, sub-prefix, what follows, the value, the writer); the table in
``docs/chain-core.md`` is checked against it.

Invariants:

* Everything one block changes (EVM state, chain data, indexes, mempool journal
  removals) reaches disk in **one** ``plyvel`` write batch with ``sync=True``, so a
  ``kill -9`` leaves either the whole block or none of it.
* Readers that serve users (:meth:`Store.committed_evm_db`) only ever see committed
  data; the block builder writes into a :class:`PendingWrites` overlay that is
  invisible until :meth:`Store.commit` lands it.
* Within one table no sub-prefix is a prefix of another, so a prefix scan of one kind of
  key never returns another kind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import plyvel
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB

from yilian.node.background_priority import EVERY, NativeThreads, nice_from_env

# -- tables (the first byte of every key) ---------------------------------------------
EVM: Final = b"e"
INDEX: Final = b"i"
MEMPOOL: Final = b"m"
WAL: Final = b"w"
META: Final = b"c"
REQUESTS: Final = b"r"

# -- sub-prefixes within a table (a key is table + sub-prefix + the layout in KEYS) -----
TX_RECORD: Final = b"tx"
LOG_ADDRESS: Final = b"la"
CERTIFICATE: Final = b"cert"
EVIDENCE: Final = b"ev"
SUBJECT_EVENT: Final = b"ds"
RECORD_EVENT: Final = b"dr"
REQUEST_EVENT: Final = b"dq"
GENESIS: Final = b"genesis"
LAST_SIGNED: Final = b"last-signed"
SIGN_LOG: Final = b"log/"  # keys end before b"log0", the stop of a scan of the sign log
SIGNED_BLOCK: Final = b"blk/"


@dataclass(frozen=True)
class KeyKind:
    """One kind of key: ``table + prefix + layout`` maps to ``value``, written by ``writer``."""

    table: bytes
    prefix: bytes
    layout: str
    value: str
    writer: str

    @property
    def full_prefix(self) -> bytes:
        return self.table + self.prefix


KEYS: Final = (
    KeyKind(EVM, b"", "py-evm's own key", "py-evm's database: state trie nodes, code, headers, "
            "block bodies, receipt tries, canonical index (not its transaction-hash lookup: "
            "`YilianChainDB` skips it, `i`/`tx` answers by hash)", "node/chain.py"),
    KeyKind(INDEX, TX_RECORD, "tx hash (32)", "rlp: block number and hash, index, encoded tx, "
            "the receipt without its bloom (type, status, cumulative gas, logs; the bloom is "
            "recomputed on reading), cumulative gas before it, first log index "
            "(`node/tx_index.py`; earlier entries hold the full receipt and still read)",
            "node/chain.py"),
    KeyKind(INDEX, LOG_ADDRESS, "address (20) + block number (8)",
            "empty: the block has a log of this address (`eth_getLogs`)", "node/chain.py"),
    KeyKind(INDEX, CERTIFICATE, "block number (8)", "msgpack: the block's commit certificate",
            "node/block_sync.py"),
    KeyKind(INDEX, EVIDENCE, "height (8) + validator address (20)",
            "msgpack: two conflicting votes", "node/evidence.py"),
    KeyKind(INDEX, SUBJECT_EVENT, "subject (32) + block number (8) + log position (4)",
            "tx hash (32) + log index in tx (4): a domain event about the subject",
            "node/domain.py"),
    KeyKind(INDEX, RECORD_EVENT, "record id (32) + version (4)",
            "block number (8) + log position (4) + tx hash (32) + log index in tx (4): "
            "the RecordPublished/RecordRemoved event", "node/domain.py"),
    KeyKind(INDEX, REQUEST_EVENT, "request id (32)",
            "block number (8) + log position (4) + tx hash (32) + log index in tx (4): "
            "the AccessReceipt event", "node/domain.py"),
    KeyKind(MEMPOOL, b"", "tx hash (32)", "raw transaction: the mempool journal",
            "node/service.py"),
    KeyKind(WAL, LAST_SIGNED, "", "msgpack: height, round, step, sign bytes, signature of "
            "the last message signed", "node/privval.py"),
    KeyKind(WAL, SIGN_LOG, "height (8) + round (4) + step (1)",
            "msgpack: sign bytes, signature, value id, valid round", "node/privval.py"),
    KeyKind(WAL, SIGNED_BLOCK, "height (8) + value id", "the block a signed proposal or "
            "precommit is for", "node/privval.py"),
    KeyKind(META, GENESIS, "", "genesis digest: a data directory refuses another genesis",
            "node/chain.py"),
    KeyKind(REQUESTS, b"", "address (20) + nonce", "expiry (8, unix seconds): a signed REST "
            "request seen, kept until it expires", "node/request_replay.py"),
)

# LevelDB's memory, bounded explicitly (the library's defaults, except the open tables):
# a 4 MiB memtable (two while one is flushed), an 8 MiB block cache, and at most
# MAX_OPEN_FILES - 10 table files open. Open tables are memory-mapped (RssFile): clean
# page cache of the database files, which the kernel reclaims under pressure; 256 bounds
# it at ~0.5 GB of 2 MiB tables, however long the history, where LevelDB's default of
# 1,000 would allow ~2 GB.
WRITE_BUFFER_BYTES: Final = 4 * 1024 * 1024
BLOCK_CACHE_BYTES: Final = 8 * 1024 * 1024
MAX_OPEN_FILES: Final = 256

_DELETED: Final = object()


class StorageError(Exception):
    """The database cannot be opened or used; the message says what to do."""


class ReadOnlyError(StorageError):
    """A committed view was written to: only the block builder may write."""


class _CommittedView(BaseDB):
    """py-evm key/value view of committed data under one prefix; writes are refused."""

    def __init__(self, db: plyvel.DB, prefix: bytes) -> None:
        self._db = db
        self._prefix = prefix

    def __getitem__(self, key: bytes) -> bytes:
        value = self._db.get(self._prefix + key)
        if value is None:
            raise KeyError(key)
        return bytes(value)

    def _exists(self, key: bytes) -> bool:
        return self._db.get(self._prefix + key) is not None

    def __setitem__(self, key: bytes, value: bytes) -> None:
        raise ReadOnlyError("committed view is read-only; writes go through the block builder")

    def __delitem__(self, key: bytes) -> None:
        raise ReadOnlyError("committed view is read-only; writes go through the block builder")


class PendingWrites(BaseDB):
    """A write overlay over one prefix of the store.

    Reads see pending writes first, then committed data. Nothing reaches disk until
    :meth:`Store.commit` takes the overlay; :meth:`discard` drops it.
    """

    def __init__(self, db: plyvel.DB, prefix: bytes) -> None:
        self._db = db
        self._prefix = prefix
        self._pending: dict[bytes, bytes | object] = {}

    def __getitem__(self, key: bytes) -> bytes:
        value = self._pending.get(key)
        if value is _DELETED:
            raise KeyError(key)
        if value is not None:
            assert isinstance(value, bytes)
            return value
        stored = self._db.get(self._prefix + key)
        if stored is None:
            raise KeyError(key)
        return bytes(stored)

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = bytes(value)

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._pending[key] = _DELETED

    def __len__(self) -> int:
        return len(self._pending)

    def discard(self) -> None:
        """Forget every pending write."""
        self._pending.clear()

    def take(self) -> list[tuple[bytes, bytes | None]]:
        """Return the pending writes as (full key, value or None for delete) and clear."""
        ops: list[tuple[bytes, bytes | None]] = [
            (self._prefix + k, v if isinstance(v, bytes) else None)
            for k, v in self._pending.items()
        ]
        self._pending.clear()
        return ops


class Store:
    """The node's single LevelDB.

    Thread-safety: plyvel is safe for concurrent reads and writes; :meth:`commit` is
    serialised by a lock so that commits land in order.
    """

    def __init__(self, path: Path) -> None:
        try:
            # LevelDB's compaction yields to the node's threads (node/background_priority.py)
            self._native_threads = NativeThreads(nice_from_env())
        except ValueError as exc:
            raise StorageError(str(exc)) from None
        self._commits = 0
        path.mkdir(parents=True, exist_ok=True)
        try:
            self.db = plyvel.DB(str(path / "leveldb"), create_if_missing=True, paranoid_checks=True,
                                write_buffer_size=WRITE_BUFFER_BYTES,
                                lru_cache_size=BLOCK_CACHE_BYTES, max_open_files=MAX_OPEN_FILES)
        except plyvel.IOError as exc:
            raise StorageError(
                f"cannot open the database at {path}: {exc}. Is another node process using this "
                "data directory? Stop it first (`yilian down`)."
            ) from exc
        except plyvel.CorruptionError as exc:
            raise StorageError(
                f"the database at {path} is corrupt: {exc}. Restore it from a peer or a backup."
            ) from exc
        self._commit_lock = threading.Lock()
        self._closed = False

    # -- views ---------------------------------------------------------------------------
    def committed_evm_db(self) -> AtomicDB:
        """A py-evm database over committed EVM data only (read-only)."""
        return AtomicDB(_CommittedView(self.db, EVM))

    def pending_evm_db(self) -> tuple[AtomicDB, PendingWrites]:
        """A py-evm database whose writes stay in the returned overlay until committed."""
        overlay = PendingWrites(self.db, EVM)
        return AtomicDB(overlay), overlay

    def get(self, prefix: bytes, key: bytes) -> bytes | None:
        value = self.db.get(prefix + key)
        return None if value is None else bytes(value)

    def put(self, prefix: bytes, key: bytes, value: bytes, *, sync: bool = False) -> None:
        """A single write outside any block commit (mempool journal, WAL)."""
        self.db.put(prefix + key, value, sync=sync)

    def delete(self, prefix: bytes, key: bytes, *, sync: bool = False) -> None:
        self.db.delete(prefix + key, sync=sync)

    def iterate(self, prefix: bytes, start: bytes = b"", stop: bytes | None = None,
                reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Iterate (key without prefix, value) over ``prefix+start`` .. ``prefix+stop``."""
        end = prefix + stop if stop is not None else _prefix_end(prefix)
        kwargs: dict[str, object] = {"start": prefix + start, "stop": end, "reverse": reverse}
        n = len(prefix)
        for k, v in self.db.iterator(**kwargs):
            yield bytes(k[n:]), bytes(v)

    # -- commit --------------------------------------------------------------------------
    def commit(self, overlay: PendingWrites | None,
               extra: Mapping[bytes, bytes | None] | None = None) -> int:
        """Write the overlay plus ``extra`` (full keys; None deletes) as one synced batch.

        Returns the number of operations written. Either all of them land or none.
        """
        ops = overlay.take() if overlay is not None else []
        with self._commit_lock, self.db.write_batch(transaction=True, sync=True) as batch:
            for key, value in ops:
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            for key, value in (extra or {}).items():
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            self._commits += 1
            check = self._commits % EVERY == 1  # the first commit too
        if check:
            self._native_threads.check()
        return len(ops) + len(extra or {})

    def memory_usage(self) -> int | None:
        """LevelDB's own estimate of its memory (memtables and block cache), in bytes."""
        try:
            value = self.db.get_property(b"leveldb.approximate-memory-usage")
        except RuntimeError:  # closed
            return None
        return None if value is None else int(value)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.db.close()


def _prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix``."""
    b = bytearray(prefix)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return b"\xff" * (len(prefix) + 1)
    b[-1] += 1
    return bytes(b)
