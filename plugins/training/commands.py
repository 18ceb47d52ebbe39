"""The ``train`` and ``run`` sub-commands, and the arguments of the launcher entry on every rank.

* ``panel2patch train RECIPE [overrides] [--resume latest|CHECKPOINT]``
* ``panel2patch run RECIPE [overrides]``: mine, then train if the recipe has a ``train`` section
* ``deepspeed [--num_gpus N] [--hostfile H] --module panel2patch.plugins.training --recipe RECIPE
  [overrides] [--resume latest]``: the same training on every rank the launcher starts (it appends
  ``--local_rank=N``, which is stripped before the overrides are read).

The recipe's ``train`` section is described in ``docs/training.md``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from panel2patch.components import Command
from panel2patch.hookspecs import hookimpl
from panel2patch.plugins.commands import recipe_arguments

from .settings import TrainSettings

_LAUNCHER_FLAG = re.compile(r"^--(local[_-]rank)(=.*)?$")

LAUNCHER_PROG = "python -m panel2patch.plugins.training"


def train(args: argparse.Namespace) -> int:
    """Train as the recipe says; ``args`` has ``recipe``, ``overrides`` and ``resume``."""
    from panel2patch.config import load

    from .trainer import Trainer

    recipe = load(args.recipe, list(args.overrides or []))
    trainer = Trainer(recipe, resume=getattr(args, "resume", None))
    summary = trainer.fit()
    if trainer.is_main:
        where = f"; model exported to {summary['export']}" if summary.get("export") else ""
        print(f"panel2patch train: done after {summary['steps']} steps{where}", file=sys.stderr)
    return 0


class TrainCommand(Command):
    help = "zoom-in pretraining on a mined corpus (recipe section 'train')"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        recipe_arguments(parser)
        parser.add_argument("--resume", help="checkpoint directory or 'latest'")

    def run(self, args: argparse.Namespace) -> int:
        return train(args)


class RunCommand(Command):
    help = "mine, then train, as one recipe describes"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        recipe_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        from panel2patch.config import load
        from panel2patch.errors import RecipeError
        from panel2patch.plugins.commands import MineCommand

        recipe = load(args.recipe, args.overrides)
        if "mine" not in recipe.config:
            raise RecipeError(f"{recipe.source}: 'run' needs a 'mine' section")
        args.shard, args.limit = None, None
        MineCommand().run(args)
        if "train" in recipe.config:
            args.resume = None
            return train(args)
        return 0


def strip_launcher_flags(argv: Sequence[str]) -> list[str]:
    """Drop ``--local_rank=N`` / ``--local-rank N`` that distributed launchers append."""
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        m = _LAUNCHER_FLAG.match(arg)
        if m is None:
            out.append(arg)
        elif m.group(2) is None:
            next(args, None)  # ``--local-rank N``: N is the next argument
    return out


def parse_launcher_args(argv: Sequence[str]) -> argparse.Namespace:
    """The arguments of ``python -m panel2patch.plugins.training`` (launcher flags stripped)."""
    parser = argparse.ArgumentParser(
        prog=LAUNCHER_PROG,
        description="Zoom-in pretraining (the entry the deepspeed launcher runs on every rank).",
    )
    parser.add_argument("--recipe", required=True, help="shipped recipe name or path to a .yaml file")
    parser.add_argument("--resume", help="checkpoint directory or 'latest'")
    parser.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. train.optim.lr=1e-4")
    return parser.parse_args(strip_launcher_flags(list(argv)))


@hookimpl
def register_settings(register):
    register("train", TrainSettings)


@hookimpl
def register_commands(register):
    register("train", TrainCommand)
    register("run", RunCommand)
