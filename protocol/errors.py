"""The base of every error yilian's shared code and SDK raise to a caller.

It lives here, beside the code the node and the SDK share (data standard, credit codes,
envelopes), so that those errors are :class:`YilianError` s too: an SDK user catches one
base for everything yilian refuses (``yilian.sdk.errors`` re-exports it). Each subclass
also keeps the builtin base it always had (``ValueError``), so ``except ValueError`` code
is unaffected.
"""

from __future__ import annotations

__all__ = ["YilianError"]


class YilianError(Exception):
    """Base of yilian's own errors (transport failures stay ``requests`` exceptions)."""
