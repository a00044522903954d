"""`spacerun`: the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jobs import __version__

__all__ = ["main"]

DESCRIPTION = """\
Run batches of jobs against Gradio apps: a manifest (YAML, or a CSV of rows) is sent
row by row to one or more replicas of an app, throttled, retried, cancellable with
Ctrl-C, with every result streamed to disk and interrupted runs resumed by running
the same command again."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spacerun", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"spacerun {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
