"""LevelDB's own log of its background work, read as a node runs (for the soak benchmark).

LevelDB writes a ``LOG`` file in its database directory (``<home>/.../leveldb/LOG``); plyvel
exposes no ``GetProperty("leveldb.stats")``, so this file is the only window onto when the
background thread flushed a memtable or compacted tables, and for how long. The lines read:

``2026/12/07-21:17:16.361411 139820774831808 Compacting 4@0 + 1@1 files``
``2026/12/07-21:17:16.477749 139820774831808 Compacted 4@0 + 1@1 files => 4474008 bytes``
``2026/12/07-21:17:13.020108 140554310514368 Level-0 table #5: started``
``2026/12/07-21:17:13.036432 140554310514368 Level-0 table #5: 895298 bytes OK``

A compaction is a ``Compacting`` line and the next ``Compacted`` line of the same thread; a
flush is a ``started`` line and the ``bytes OK`` line of the same table. LevelDB runs one
background thread, so the pairs never interleave; a line that does not parse is skipped.

Invariants: :meth:`LogReader.read` never raises on the file's content (a missing file reads
as no events) and returns each completed event once, in the order of their end lines; an
event whose end line has not been written yet is returned by a later read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

_LINE = re.compile(r"^(\d{4}/\d\d/\d\d-\d\d:\d\d:\d\d\.\d{6}) (\d+) (.*)$")
_COMPACTED = re.compile(r"^Compacted .* => (\d+) bytes$")
_FLUSH_START = re.compile(r"^Level-0 table #(\d+): started$")
_FLUSH_DONE = re.compile(r"^Level-0 table #(\d+): (\d+) bytes OK$")


@dataclass(frozen=True)
class Event:
    """One piece of background work: ``kind`` ``compaction`` or ``flush``; ``start`` and
    ``end`` in seconds since the epoch (local time, as LevelDB writes it); bytes written."""

    kind: str
    start: float
    end: float
    written: int

    @property
    def seconds(self) -> float:
        return self.end - self.start


def parse_time(text: str) -> float:
    """``2026/12/07-21:17:16.361411`` as seconds since the epoch (local time)."""
    return datetime.strptime(text, "%Y/%m/%d-%H:%M:%S.%f").timestamp()


@dataclass
class LogReader:
    """Reads the events appended to one ``LOG`` file since the last :meth:`read`."""

    path: Path
    offset: int = 0
    _partial: str = ""
    _compacting: dict[str, float] = field(default_factory=dict)  # thread -> start
    _flushing: dict[str, float] = field(default_factory=dict)  # table number -> start

    def read(self) -> list[Event]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return []
        self.offset += len(chunk)
        text = self._partial + chunk.decode("utf-8", "replace")
        lines = text.split("\n")
        self._partial = lines.pop()  # the last line may still be being written
        events = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> Event | None:
        m = _LINE.match(line)
        if m is None:
            return None
        try:
            at = parse_time(m.group(1))
        except ValueError:
            return None
        thread, what = m.group(2), m.group(3)
        if what.startswith("Compacting "):
            self._compacting[thread] = at
            return None
        if (done := _COMPACTED.match(what)) is not None:
            start = self._compacting.pop(thread, None)
            return None if start is None else Event("compaction", start, at, int(done.group(1)))
        if (flush := _FLUSH_START.match(what)) is not None:
            self._flushing[flush.group(1)] = at
            return None
        if (ok := _FLUSH_DONE.match(what)) is not None:
            start = self._flushing.pop(ok.group(1), None)
            return None if start is None else Event("flush", start, at, int(ok.group(2)))
        return None


def find_logs(home: Path) -> list[Path]:
    """The ``LOG`` file of every LevelDB under a node's home (one today)."""
    return sorted(p.parent / "LOG" for p in home.rglob("CURRENT")
                  if (p.parent / "LOG").exists())
