"""The everyday commands: ``plugins``, ``recipes``, ``cp``, ``validate`` and ``mine``."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from panel2patch.components import Command
from panel2patch.errors import Panel2PatchError
from panel2patch.hookspecs import hookimpl
from panel2patch.run import world_info


def recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``RECIPE [OVERRIDES...]`` arguments every recipe-driven command takes."""
    parser.add_argument("recipe", help="shipped recipe name or path to a .yaml file")
    parser.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. mine.writer.args.out=corpus")


class PluginsCommand(Command):
    help = "list plugins, their hooks and registered components (kind, name -> module:qualname)"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON")

    def run(self, args: argparse.Namespace) -> int:
        rows = describe_plugins()
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        for row in rows:
            print(f"{row['name']}  ({row['distribution']} {row['version']})")
            print(f"    hooks: {', '.join(row['hooks']) or '-'}")
            for c in sorted(row["components"], key=lambda c: (c["kind"], c["name"])):
                print(f"    {c['kind']:<18} {c['name']:<22} -> {c['target']}")
        return 0


class RecipesCommand(Command):
    help = "list shipped recipes"

    def run(self, args: argparse.Namespace) -> int:
        from panel2patch.config import shipped

        for name, path in sorted(shipped().items()):
            print(f"{name:<24} {describe(path)}")
        return 0


class CopyRecipeCommand(Command):
    help = "copy a shipped recipe to edit it"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name")
        parser.add_argument("dest")

    def run(self, args: argparse.Namespace) -> int:
        print(copy_recipe(args.name, args.dest))
        return 0


class ValidateCommand(Command):
    help = "resolve every component of a recipe and check its args and settings"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        recipe_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        from panel2patch.config import load, validate

        recipe = load(args.recipe, args.overrides)
        checked = validate(recipe)
        for key, kind, name in checked:
            print(f"{key:<22} {kind:<18} {name}")
        print(f"{recipe.source}: OK ({len(checked)} components)")
        return 0


class MineCommand(Command):
    help = "mine a figure/panel/region corpus (recipe section 'mine')"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        recipe_arguments(parser)
        parser.add_argument("--shard", help="process shard i of n, as 'i/n' (default: the launcher's rank/world size or 0/1)")
        parser.add_argument("--limit", type=int, help="mine at most this many figures")
        parser.add_argument("--workers", type=int, help="worker processes, each a mining shard of its own "
                                                        "(default: the cores available to this rank; re-run with the same number)")
        parser.add_argument("--pool", type=int, default=1, help="figures each worker mines at once, in threads, so "
                                                                "that an LVLM engine answers their requests together")

    def run(self, args: argparse.Namespace) -> int:
        from panel2patch.config import load, validate

        from .mine_workers import default_workers, make_miner, mine_in_workers, use_gpu_share

        recipe = load(args.recipe, args.overrides)
        shard, num_shards = parse_shard(args.shard)
        workers = default_workers() if args.workers is None else args.workers
        if workers < 1 or (args.limit is not None and args.limit < 0):
            raise Panel2PatchError(f"--workers must be >= 1 (got {workers}) and --limit >= 0")
        if args.pool < 1:
            raise Panel2PatchError(f"--pool must be >= 1 (got {args.pool})")
        if workers == 1:
            use_gpu_share()  # before any component starts CUDA
            stats = make_miner(recipe, shard, num_shards, args.limit, args.pool).run_shard()
        else:
            validate(recipe)  # refuse a bad recipe once, here, rather than once per worker
            stats = mine_in_workers(recipe, shard, num_shards, workers, args.limit, pool=args.pool)
        rejects = sum(stats.rejects.values())
        print(
            f"mined {stats.inputs} inputs: {stats.figures} figures "
            f"({stats.counts['panels']} panels, {stats.counts['regions']} regions, {stats.counts['markers']} markers), "
            f"{rejects} rejected" + (f" {dict(stats.rejects)}" if rejects else "")
        )
        if stats.diagnostics:
            counted = ", ".join(f"{k} {n}" for k, n in sorted(stats.diagnostics.items()))
            print(f"diagnostics (also in the manifest and the report): {counted}")
        return 0


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n); None -> the launcher's rank and world size (or 0/1)."""
    if spec is None:
        rank, _, world_size = world_info()
        return rank, world_size
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise Panel2PatchError(f"--shard must look like 'i/n' (e.g. 0/4), got {spec!r}") from None
    if not 0 <= i < n:
        raise Panel2PatchError(f"--shard {spec}: need 0 <= i < n")
    return i, n


@hookimpl
def register_commands(register):
    register("plugins", PluginsCommand)
    register("recipes", RecipesCommand)
    register("cp", CopyRecipeCommand)
    register("validate", ValidateCommand)
    register("mine", MineCommand)


def plugin_version(pm: Any, plugin: object) -> tuple[str, str]:
    """(distribution name, version) of a plugin."""
    for p, dist in pm.list_plugin_distinfo():
        if p is plugin:
            return dist.metadata["name"], dist.version
    from panel2patch import __version__

    return "panel2patch", __version__


def describe_plugins() -> list[dict[str, Any]]:
    """Each registered plugin with its distribution, version, hooks and registered components; each
    component as ``{"kind", "name", "target": "module:qualname"}``."""
    from panel2patch.manager import kinds, plugin_manager, registry

    pm = plugin_manager()
    owned: dict[str, list[dict[str, str]]] = {}
    for kind in kinds():
        for entry in registry(kind):
            owned.setdefault(entry.owner, []).append({"kind": kind, "name": entry.name, "target": entry.target})
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda np: np[0]):
        if plugin is None:
            continue
        dist, version = plugin_version(pm, plugin)
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        rows.append({"name": name, "distribution": dist, "version": version, "hooks": hooks,
                     "components": owned.get(name, [])})
    return rows


def describe(path: Path) -> str:
    """The first comment line of a recipe: what it is for."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def copy_recipe(name: str, dest: str) -> Path:
    """Copy a shipped (or any) recipe to ``dest`` (a folder or a file name); never overwrites."""
    from panel2patch.config import locate

    src = locate(name)
    target = Path(dest)
    if target.is_dir():
        target = target / src.name
    if target.exists():
        raise Panel2PatchError(f"{target} exists; choose another destination or remove it first")
    shutil.copyfile(src, target)
    return target
