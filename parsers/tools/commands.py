"""The ``parse``, ``score`` and ``split-caption`` sub-commands; a tool module is imported when its command runs."""

from __future__ import annotations

import argparse

from panel2patch.components import Command
from panel2patch.hookspecs import hookimpl


class ParseCommand(Command):
    """``panel2patch parse IMAGE... [--parser NAME] [--markers NAME|none] [--out DIR] [--overlay DIR]``."""

    help = "parse figure images into panels, labels, kinds and markers"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("images", nargs="+")
        parser.add_argument("--parser", default="cpu_layout", help="registered figure parser")
        parser.add_argument("--markers", default="shape_markers", help="registered marker detector ('none' to skip)")
        parser.add_argument("--out", help="write one JSON file per image into this directory")
        parser.add_argument("--overlay", help="write PNG overlays into this directory")

    def run(self, args: argparse.Namespace) -> int:
        from .parse_images import main

        return main(args)


class ScoreCommand(Command):
    """``panel2patch score PRED GT [--json FILE]``."""

    help = "score parsed figures against ground truth"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("pred", help="predictions: a directory of JSON files, a JSON file or a corpus directory")
        parser.add_argument("gt", help="ground truth in the same forms")
        parser.add_argument("--json", help="also write the scores as JSON here")

    def run(self, args: argparse.Namespace) -> int:
        from .scoring import main

        return main(args)


class SplitCaptionCommand(Command):
    """``panel2patch split-caption INPUT [--splitter NAME]``."""

    help = "split captions into per-panel sub-captions"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("input", help="text file (one caption per line), JSONL (id, caption, labels) or '-'")
        parser.add_argument("--splitter", default="label_splitter", help="registered caption splitter")

    def run(self, args: argparse.Namespace) -> int:
        from .split_captions import main

        return main(args)


@hookimpl
def register_commands(register):
    register("parse", ParseCommand)
    register("score", ScoreCommand)
    register("split-caption", SplitCaptionCommand)
