"""Registers the ``demo-data`` command and the ``demo_figures`` source."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from panel2patch.components import Command, Source
from panel2patch.data import SourceItem
from panel2patch.errors import Panel2PatchError
from panel2patch.hookspecs import hookimpl


class DemoDataCommand(Command):
    """``panel2patch demo-data OUT --n N --seed S [--style real]``: write a demo set (layout in
    :mod:`panel2patch.plugins.demo`)."""

    help = "generate demo compound figures with exact ground truth"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("out")
        parser.add_argument("--n", type=int, default=24)
        parser.add_argument("--seed", type=int, default=0)
        # absent from the namespace unless given, so that callers building the namespace by hand keep working
        parser.add_argument("--style", choices=("default", "real"), default=argparse.SUPPRESS,
                            help="figure style: 'default' (generated, the default) or 'real' (real pictures, "
                                 "2-6 MP, gutter-poor layouts, JPEG; see panel2patch.plugins.demo)")

    def run(self, args: argparse.Namespace) -> int:
        from .write import write_demo

        summary = write_demo(args.out, args.n, args.seed, style=getattr(args, "style", "default"))
        c = summary["counts"]
        print(f"{c['figures']} figures, {sum(c['panels'].values())} panels, {sum(c['markers'].values())} markers, "
              f"{c['regions']} regions -> {args.out}")
        return 0


class DemoFiguresSource(Source):
    """The ``n`` figures of demo set ``seed`` in ``style``, generated one at a time while iterating; nothing
    is written.

    Items carry the id, PNG bytes and caption that ``panel2patch demo-data`` writes for the same
    ``n``, ``seed`` and ``--style``, so mining this source gives the same corpus as mining that folder.
    """

    def __init__(self, n: int = 24, seed: int = 0, style: str = "default") -> None:
        if n < 1:
            raise Panel2PatchError(f"demo_figures source: n must be at least 1, got {n}")
        if seed < 0:
            raise Panel2PatchError(f"demo_figures source: seed must be >= 0, got {seed}")
        if style not in ("default", "real"):
            raise Panel2PatchError(f"demo_figures source: style must be 'default' or 'real', got {style!r}")
        self.n = n
        self.seed = seed
        self.style = style

    def __iter__(self) -> Iterator[SourceItem]:
        if self.style == "default":
            from .figure import make_figure as make
        else:
            from .real_figure import make_real_figure as make

        origin = f"demo_figures:seed={self.seed}" + ("" if self.style == "default" else f",style={self.style}")
        for index in range(self.n):
            demo = make(self.seed, index)
            yield SourceItem(id=demo.figure.id, image=demo.png(), caption=demo.figure.caption,
                             origin=f"{origin}#{index}")


@hookimpl
def register_commands(register):
    register("demo-data", DemoDataCommand)


@hookimpl
def register_sources(register):
    register("demo_figures", DemoFiguresSource)
