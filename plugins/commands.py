"""The everyday commands: ``plugins``, ``recipes``, ``cp``, ``validate`` and ``mine``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from panel2patch.cli import recipe_arguments
from panel2patch.components import Command
from panel2patch.hookspecs import hookimpl


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
        from panel2patch.config import describe, shipped

        for name, path in sorted(shipped().items()):
            print(f"{name:<24} {describe(path)}")
        return 0


class CopyRecipeCommand(Command):
    help = "copy a shipped recipe to edit it"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name")
        parser.add_argument("dest")

    def run(self, args: argparse.Namespace) -> int:
        from panel2patch.config import copy

        print(copy(args.name, args.dest))
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

    def run(self, args: argparse.Namespace) -> int:
        from panel2patch.mining import main

        return main(args)


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
