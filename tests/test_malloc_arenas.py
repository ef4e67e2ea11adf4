"""The node's malloc arena limit (yilian.node.malloc_arenas)."""

from __future__ import annotations

import ctypes

import pytest

from yilian.node import malloc_arenas


def _glibc() -> bool:
    try:
        ctypes.CDLL(None).gnu_get_libc_version  # noqa: B018 - only whether it exists
    except AttributeError:
        return False
    return True


@pytest.mark.skipif(not _glibc(), reason="mallopt(M_ARENA_MAX) is glibc's")
def test_the_limit_is_set_when_the_environment_names_none(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(malloc_arenas.ENV_VAR, raising=False)
    assert malloc_arenas.limit_arenas() is True


def test_an_environment_limit_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(malloc_arenas.ENV_VAR, "4")
    assert malloc_arenas.limit_arenas() is False


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        malloc_arenas.limit_arenas(0)
