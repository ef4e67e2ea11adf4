"""Fault injection for the multi-process tests (never set in production).

``YILIAN_FAULT_EXIT_AFTER_SIGN=prevote:<h>`` (or ``precommit:<h>``) makes the node exit
with ``FAULT_EXIT_CODE`` right after signing that vote at height ``h`` and before sending
it, as a crash there would.
"""

from __future__ import annotations

import os

from yilian.consensus import VoteType

FAULT_EXIT_CODE = 86
FAULT_ENV = "YILIAN_FAULT_EXIT_AFTER_SIGN"


def crash_after_sign() -> tuple[int, int] | None:
    """(vote type, height) to crash after, from the environment, or None."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    kind, _, height = spec.partition(":")
    types = {"prevote": int(VoteType.PREVOTE), "precommit": int(VoteType.PRECOMMIT)}
    if kind not in types or not height.isdigit():
        raise ValueError(f"{FAULT_ENV} must look like prevote:<height> or precommit:<height>")
    return types[kind], int(height)
