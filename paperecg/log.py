"""Progress and warning lines, one definition for the whole package (pipeline, classifier training)."""
from __future__ import annotations

import sys


def log_if(verbose: bool, *msg) -> None:
    """Print `msg` (joined by spaces, as print does) to stdout when `verbose`."""
    if verbose:
        print(*msg, flush=True)


def warn(msg: str) -> None:
    """One line on stderr, always shown (the organizers' harness keeps stderr)."""
    print(f"[paperecg] {msg}", file=sys.stderr, flush=True)
