"""The ``panel2patch`` command. Sub-command bodies import their (heavy) modules only when run."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__
from .errors import Panel2PatchError


def _cmd_plugins(args: argparse.Namespace) -> int:
    from .manager import describe_plugins

    rows = describe_plugins()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']}  ({row['distribution']} {row['version']})")
        print(f"    hooks: {', '.join(row['hooks']) or '-'}")
        for kind, names in sorted(row["components"].items()):
            print(f"    {kind}: {', '.join(sorted(names))}")
    return 0


def _cmd_recipes(args: argparse.Namespace) -> int:
    from .config import describe, shipped

    for name, path in sorted(shipped().items()):
        print(f"{name:<24} {describe(path)}")
    return 0


def _cmd_cp(args: argparse.Namespace) -> int:
    from .config import copy

    print(copy(args.name, args.dest))
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .config import load, validate

    recipe = load(args.recipe, args.overrides)
    checked = validate(recipe)
    for key, kind, name in checked:
        print(f"{key:<22} {kind:<18} {name}")
    print(f"{recipe.source}: OK ({len(checked)} components)")
    return 0


def _lazy(module: str, function: str = "main"):
    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), function)(args)

    return run


def _recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="shipped recipe name or path to a .yaml file")
    p.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. mine.writer.args.out=corpus")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="panel2patch",
        description="Mine figure/panel/region supervision from scientific figures and pretrain CLIP on it.",
    )
    parser.add_argument("--version", action="version", version=f"panel2patch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("plugins", help="list plugins, their hooks and registered components")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("recipes", help="list shipped recipes")
    p.set_defaults(func=_cmd_recipes)

    p = sub.add_parser("cp", help="copy a shipped recipe to edit it")
    p.add_argument("name")
    p.add_argument("dest")
    p.set_defaults(func=_cmd_cp)

    p = sub.add_parser("validate", help="resolve every component of a recipe and check its args")
    _recipe_args(p)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("mine", help="mine a figure/panel/region corpus (recipe section 'mine')")
    _recipe_args(p)
    p.add_argument("--shard", help="process shard i of n, as 'i/n' (default: RANK/WORLD_SIZE or 0/1)")
    p.add_argument("--limit", type=int, help="mine at most this many figures")
    p.set_defaults(func=_lazy("panel2patch.mining"))

    p = sub.add_parser("train", help="zoom-in pretraining on a mined corpus (recipe section 'train')")
    _recipe_args(p)
    p.add_argument("--resume", help="checkpoint directory or 'latest'")
    p.set_defaults(func=_lazy("panel2patch.train"))

    p = sub.add_parser("eval", help="evaluate a trained model (recipe section 'eval')")
    _recipe_args(p)
    p.set_defaults(func=_lazy("panel2patch.train", "evaluate"))

    p = sub.add_parser("run", help="mine, then train, as one recipe describes")
    _recipe_args(p)
    p.set_defaults(func=_lazy("panel2patch.mining", "run_all"))

    p = sub.add_parser("report", help="write a static HTML report of a corpus")
    p.add_argument("corpus", help="corpus directory (with manifest.json)")
    p.add_argument("out", help="output .html file")
    p.add_argument("--figures", type=int, default=50, help="figures to draw overlays for")
    p.set_defaults(func=_lazy("panel2patch.report"))

    p = sub.add_parser("export-pairs", help="export flat image-text pairs of one level as WebDataset shards")
    p.add_argument("corpus")
    p.add_argument("out")
    p.add_argument("--level", choices=("figure", "panel", "region"), default="panel")
    p.add_argument("--shard-size", type=int, default=1000)
    p.set_defaults(func=_lazy("panel2patch.export"))

    p = sub.add_parser("demo-data", help="generate demo compound figures with exact ground truth")
    p.add_argument("out")
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_lazy("panel2patch.demo"))

    p = sub.add_parser("parse", help="parse figure images into panels, labels, kinds and markers")
    p.add_argument("images", nargs="+")
    p.add_argument("--parser", default="layout", help="registered figure parser")
    p.add_argument("--markers", default="shapes", help="registered marker detector ('none' to skip)")
    p.add_argument("--out", help="write one JSON file per image into this directory")
    p.add_argument("--overlay", help="write PNG overlays into this directory")
    p.set_defaults(func=_lazy("panel2patch.parsing"))

    p = sub.add_parser("score", help="score parsed figures against ground truth")
    p.add_argument("pred", help="predictions: a directory of JSON files, a JSON file or a corpus directory")
    p.add_argument("gt", help="ground truth in the same forms")
    p.add_argument("--json", help="also write the scores as JSON here")
    p.set_defaults(func=_lazy("panel2patch.scoring"))

    p = sub.add_parser("split-caption", help="split captions into per-panel sub-captions")
    p.add_argument("input", help="text file (one caption per line), JSONL (id, caption, labels) or '-'")
    p.add_argument("--splitter", default="labels", help="registered caption splitter")
    p.set_defaults(func=_lazy("panel2patch.splitting"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Panel2PatchError as exc:
        print(f"panel2patch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"panel2patch {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
