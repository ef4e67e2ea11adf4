"""What every bench command shares: its error type, its log line, argument types and the
``main`` wrappers.

:func:`run_main` gives every command the same exit statuses: 130 on Ctrl-C or SIGTERM (the
command's own ``finally`` blocks stop its networks on the way out), 1 with one logged line
on a :class:`BenchError` or a launcher error. :func:`report_main` adds what every command
with a report does after it: print the report, write ``--json``, exit 1 unless it passed.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TypeVar

from yilian.cli import launcher

R = TypeVar("R")


class Reported(Protocol):
    """A bench report: whether the run is valid, and its JSON form."""

    @property
    def ok(self) -> bool: ...

    def to_json(self) -> Any: ...


Rep = TypeVar("Rep", bound=Reported)


class BenchError(Exception):
    """The benchmark cannot run or its result is invalid; the message says why."""


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # As Ctrl-C: asyncio.run cancels the running load, then raises KeyboardInterrupt.
    signal.raise_signal(signal.SIGINT)


def run_main(run: Callable[[], R]) -> R | int:
    """``run()``, or the exit status when it was interrupted (130) or failed (1, logged)."""
    # A background job (`nohup ... &`) starts with SIGINT ignored; asyncio.run cancels the
    # load on SIGINT only when its handler is the default one.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return run()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except (BenchError, launcher.LauncherError) as exc:
        log(f"error: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def report_main(run: Callable[[], Rep], text: Callable[[Rep], str], json_dest: str | None,
                passed: Callable[[Rep], bool] = lambda report: report.ok) -> int:
    """:func:`run_main`, then print ``text(report)`` and write its JSON to ``json_dest``
    (``--json``, None: no JSON); the exit status is 0 when ``passed(report)``, else 1."""
    report = run_main(run)
    if isinstance(report, int):
        return report
    print(text(report), flush=True)
    if json_dest is not None:
        write_json(report.to_json(), json_dest)
    return 0 if passed(report) else 1


def write_json(doc: Any, dest: str) -> None:
    """``--json [PATH]``: the report as JSON to PATH, or to stdout when PATH is ``-``."""
    text = json.dumps(doc, indent=2, default=str)
    if dest == "-":
        print(text)
    else:
        Path(dest).write_text(text + "\n")


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"must be between 0 and 10, got {text}")
    return value


def add_verify_and_json_args(group: argparse._ActionsContainer) -> None:
    """``--verify``, ``--verify-sample`` and ``--json``, the same in every load command."""
    group.add_argument("--verify", choices=("all", "sample", "none"), default="all",
                       help="after each phase, check eth_getTransactionReceipt status 1 for "
                       "all transactions, a random sample, or none")
    group.add_argument("--verify-sample", type=positive_int, default=200,
                       help="sample size for --verify sample")
    group.add_argument("--json", metavar="PATH", nargs="?", const="-", default=None,
                       help="also write the report as JSON to PATH ('-' or no value: stdout, "
                       "after the text summary)")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout; appends a default only where the help has none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (action.default not in (None, False, argparse.SUPPRESS)
                and "default" not in text):
            text += " (default: %(default)s)"
        return text
