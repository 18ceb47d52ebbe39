"""Registers the ``demo-data`` command and the ``demo_figures`` source."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from panel2patch.components import Command, Source
from panel2patch.data import SourceItem
from panel2patch.errors import Panel2PatchError
from panel2patch.hookspecs import hookimpl


class DemoDataCommand(Command):
    """``panel2patch demo-data OUT --n N --seed S``: write a demo set (layout in :mod:`panel2patch.plugins.demo`)."""

    help = "generate demo compound figures with exact ground truth"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("out")
        parser.add_argument("--n", type=int, default=24)
        parser.add_argument("--seed", type=int, default=0)

    def run(self, args: argparse.Namespace) -> int:
        from .write import write_demo

        summary = write_demo(args.out, args.n, args.seed)
        c = summary["counts"]
        print(f"{c['figures']} figures, {sum(c['panels'].values())} panels, {sum(c['markers'].values())} markers, "
              f"{c['regions']} regions -> {args.out}")
        return 0


class DemoFiguresSource(Source):
    """The ``n`` figures of demo set ``seed``, generated one at a time while iterating; nothing is written.

    Items carry the id, PNG bytes and caption that ``panel2patch demo-data`` writes for the same
    ``n`` and ``seed``, so mining this source gives the same corpus as mining that folder.
    """

    def __init__(self, n: int = 24, seed: int = 0) -> None:
        if n < 1:
            raise Panel2PatchError(f"demo_figures source: n must be at least 1, got {n}")
        if seed < 0:
            raise Panel2PatchError(f"demo_figures source: seed must be >= 0, got {seed}")
        self.n = n
        self.seed = seed

    def __iter__(self) -> Iterator[SourceItem]:
        from .figure import make_figure

        for index in range(self.n):
            demo = make_figure(self.seed, index)
            yield SourceItem(id=demo.figure.id, image=demo.png(), caption=demo.figure.caption,
                             origin=f"demo_figures:seed={self.seed}#{index}")


@hookimpl
def register_commands(register):
    register("demo-data", DemoDataCommand)


@hookimpl
def register_sources(register):
    register("demo_figures", DemoFiguresSource)
