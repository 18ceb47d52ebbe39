"""The ``panel2patch`` command: a thin shell over the ``commands`` registry. Every sub-command is a
:class:`~panel2patch.components.Command` that a plugin registers through ``register_commands``; bodies import their
heavy modules only when run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import Panel2PatchError


def build_parser() -> argparse.ArgumentParser:
    from .manager import registry

    parser = argparse.ArgumentParser(
        prog="panel2patch", description="Mine figure/panel/region supervision from figures and pretrain CLIP on it.")
    parser.add_argument("--version", action="version", version=f"panel2patch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for entry in registry("commands"):
        command = registry("commands").build(entry.name)
        p = sub.add_parser(entry.name, help=command.help, description=command.help)
        command.configure(p)
        p.set_defaults(func=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except Panel2PatchError as exc:
        print(f"panel2patch: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (Panel2PatchError, OSError) as exc:  # OSError: an unwritable output, a full disk, a vanished input
        print(f"panel2patch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"panel2patch {args.command}: interrupted", file=sys.stderr)
        return 130
