"""The ``eval``, ``ablate`` and ``eval-task`` sub-commands.

* ``panel2patch eval RECIPE [overrides]``: the recipe's ``eval`` section (models, evaluators, corpus split).
* ``panel2patch eval --model NAME [--pretrained WEIGHTS] [--random-floor] CORPUS [overrides]``: any open_clip model
  (a local checkpoint in any format open_clip reads, BMC-CLIP's included, an ``hf-hub:`` id, a panel2patch export
  folder) on every figure of a corpus, through the shipped ``eval`` recipe.
* ``panel2patch ablate RECIPE --grid GRID --seeds N [overrides]``: :mod:`.ablation`.
* ``panel2patch eval-task OUT``: the offline modality-classification task (:mod:`.tasks`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from panel2patch.components import Command
from panel2patch.errors import Panel2PatchError
from panel2patch.hookspecs import hookimpl

from .settings import EvalSettings


def model_overrides(args: argparse.Namespace) -> list[str]:
    """Dotlist overrides of the shipped ``eval`` recipe for ``--model/--pretrained/--random-floor CORPUS``."""
    pretrained = args.pretrained
    model = args.model
    if pretrained and Path(pretrained).is_dir():
        if not (Path(pretrained) / "open_clip_config.json").is_file():
            raise Panel2PatchError(f"--pretrained {pretrained!r} is a folder without open_clip_config.json "
                                   "(a panel2patch export folder has one)")
        model, pretrained = f"local-dir:{pretrained}", None
    label = Path(args.pretrained).stem if args.pretrained and not Path(args.pretrained).is_dir() else args.model
    models = {label: {"loader": "open_clip", "args": {"model": model, "pretrained": pretrained}}}
    if args.random_floor:
        if model.startswith("local-dir:"):
            raise Panel2PatchError("--random-floor needs an open_clip model name, not an export folder")
        models["random_init"] = {"loader": "open_clip", "args": {"model": model, "pretrained": None}}
    out = [f"eval.corpus={json.dumps(args.target)}", f"eval.models={json.dumps(models)}"]
    if args.held_out is not None:
        out += ["eval.split=held_out", f"eval.held_out={args.held_out}"]
    return out


def finish(command: str, done: dict) -> int:
    """Print a run's table on stdout and what it wrote on stderr."""
    print(done["markdown"])
    for what, path in done["written"].items():
        print(f"panel2patch {command}: wrote {what} {path}", file=sys.stderr)
    return 0


class EvalCommand(Command):
    help = "evaluate models: retrieval per level and across levels, box-text, zero-shot, linear probe"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("target", help="recipe name or .yaml file; with --model, the corpus folder")
        parser.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. eval.bootstrap=2000")
        parser.add_argument("--model", help="an open_clip model name: evaluate it on the corpus TARGET")
        parser.add_argument("--pretrained", help="its weights: a checkpoint file, hf-hub:ORG/REPO/FILE, a tag, or an "
                            "export folder (default: random initialisation)")
        parser.add_argument("--random-floor", action="store_true", help="also score the random initialisation")
        parser.add_argument("--held-out", type=float, help="evaluate only this held-out fraction (training's split)")

    def run(self, args: argparse.Namespace) -> int:
        from panel2patch.config import load

        from .runner import evaluate

        if args.model:
            recipe = load("eval", [*model_overrides(args), *args.overrides])
        elif args.pretrained or args.random_floor or args.held_out is not None:
            raise Panel2PatchError("--pretrained, --random-floor and --held-out go with --model")
        else:
            recipe = load(args.target, list(args.overrides))
        return finish("eval", evaluate(recipe))


class AblateCommand(Command):
    help = "train recipe variants (a grid) over seeds with equal steps, evaluate them, write one table"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("recipe", help="the full model's recipe (shipped name or .yaml file)")
        parser.add_argument("overrides", nargs="*", help="dotlist overrides applied to every variant")
        parser.add_argument("--grid", required=True, help="shipped grid name (panel2patch recipes) or .yaml file")
        parser.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3)")
        parser.add_argument("--out", help="output folder (default: the grid's, else out/ablate/GRID)")
        parser.add_argument("--eval-only", action="store_true", help="train nothing; evaluate the finished runs")

    def run(self, args: argparse.Namespace) -> int:
        from .ablation import ablate

        if args.seeds < 1:
            raise Panel2PatchError(f"--seeds must be >= 1, got {args.seeds}")
        return finish("ablate", ablate(args.recipe, args.grid, args.seeds, list(args.overrides), args.out,
                                       train=not args.eval_only))


class EvalTaskCommand(Command):
    help = "write the offline modality-classification task (images from installed packages) for zero-shot/probes"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("out", help="output folder")
        parser.add_argument("--n-per-class", type=int, default=40, help="images per class and split (default 40)")
        parser.add_argument("--size", type=int, default=224, help="image side in pixels (default 224)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--format", choices=("folder", "wds"), default="folder",
                            help="class sub-folders, or clip_benchmark's WebDataset layout")

    def run(self, args: argparse.Namespace) -> int:
        from .tasks import build_modality_task

        path = build_modality_task(args.out, n_per_class=args.n_per_class, seed=args.seed, size=args.size,
                                   fmt=args.format)
        print(f"panel2patch eval-task: wrote {path}", file=sys.stderr)
        return 0


@hookimpl
def register_settings(register):
    register("eval", EvalSettings)


@hookimpl
def register_commands(register):
    register("eval", EvalCommand)
    register("ablate", AblateCommand)
    register("eval-task", EvalTaskCommand)
