"""Recipes: OmegaConf YAML run descriptions, addressed by shipped name or by path.

A recipe names components by registered name, each with its own ``args``::

    mine:
      parser: {name: cpu_layout, args: {min_panel_frac: 0.02}}
      cleaners:
        - {name: clip_to_image}
        - {name: box_nms, args: {iou: 0.5}}

Each component kind declares the slot it fills (:class:`~panel2patch.registry.Kind`); the other keys of
a section are plain settings (:mod:`panel2patch.settings`). Command-line overrides are OmegaConf
dotlists (``mine.parser.args.min_panel_frac=0.05``) merged on top; launcher flags such as
``--local_rank=0`` are stripped first.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import Panel2PatchError, RecipeError

_LAUNCHER_FLAG = re.compile(r"^--(local[_-]rank)(=.*)?$")


@dataclass
class Recipe:
    """A resolved recipe: ``config`` is a plain dict (interpolations resolved)."""

    source: str
    config: dict[str, Any]

    def section(self, name: str) -> dict[str, Any]:
        if name not in self.config:
            raise RecipeError(f"{self.source}: recipe has no {name!r} section (it has: {', '.join(self.config)})")
        return self.config[name]

    def to_yaml(self) -> str:
        from omegaconf import OmegaConf

        return OmegaConf.to_yaml(OmegaConf.create(self.config))


def shipped() -> dict[str, Path]:
    """Shipped recipes by name."""
    root = resources.files("panel2patch.recipes")
    return {p.name[: -len(".yaml")]: Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def describe(path: Path) -> str:
    """The first comment line of a recipe: what it is for."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def locate(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise RecipeError(f"recipe file {name_or_path!r} does not exist")
        return path
    recipes = shipped()
    if name_or_path not in recipes:
        raise RecipeError(
            f"no recipe named {name_or_path!r}; shipped recipes: {', '.join(sorted(recipes))} "
            "(or give a path to a .yaml file)"
        )
    return recipes[name_or_path]


def strip_launcher_flags(argv: Sequence[str]) -> list[str]:
    """Drop ``--local_rank=N`` / ``--local-rank N`` that distributed launchers append."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        m = _LAUNCHER_FLAG.match(arg)
        if m:
            skip = m.group(2) is None
            continue
        out.append(arg)
    return out


def load(name_or_path: str, overrides: Sequence[str] = ()) -> Recipe:
    """Load a recipe and merge dotlist overrides; the result is not validated (see :func:`validate`)."""
    import yaml
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = locate(name_or_path)
    source = str(path)
    try:
        cfg = OmegaConf.load(path)
    except (OmegaConfBaseException, OSError, ValueError, yaml.YAMLError) as exc:
        raise RecipeError(f"{source}: cannot read recipe: {exc}") from None
    for override in strip_launcher_flags(overrides):
        key, eq, text = override.partition("=")
        if not eq or not key:
            raise RecipeError(f"{source}: override {override!r} is not of the form key=value")
        try:
            OmegaConf.update(cfg, key, yaml.safe_load(text) if text else None, merge=True)
        except (OmegaConfBaseException, yaml.YAMLError, ValueError, TypeError) as exc:
            raise RecipeError(f"{source}: override {override!r}: {exc}") from None
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        where = f" key {key!r}:" if key else ""
        raise RecipeError(f"{source}:{where} {exc}") from None
    if not isinstance(config, dict):
        raise RecipeError(f"{source}: a recipe is a mapping of sections (mine, train, ...)")
    return Recipe(source, config)


def slots() -> dict[str, Any]:
    """Recipe slot (``"mine.parser"``) -> the :class:`~panel2patch.registry.Kind` that fills it."""
    from .manager import kinds

    return {k.slot: k for k in kinds().values() if k.slot is not None}


def component_keys(section: str) -> tuple[str, ...]:
    """The keys of ``section`` that hold components (the rest are plain settings)."""
    return tuple(slot.split(".", 1)[1] for slot in slots() if slot.split(".", 1)[0] == section)


def components(recipe: Recipe) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every component reference as ``(key, kind, node)``; ``key`` like ``mine.cleaners[1]``."""
    for slot, kind in slots().items():
        for key, node in _slot_nodes(recipe, slot, kind):
            yield key, kind.name, node


def _slot_nodes(recipe: Recipe, slot: str, kind: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    section, field = slot.split(".", 1)
    if section not in recipe.config:
        return
    body = recipe.config[section]
    if not isinstance(body, dict):
        raise RecipeError(f"{recipe.source}: key {section!r} must be a mapping")
    if field not in body or body[field] is None:
        if kind.required:
            raise RecipeError(f"{recipe.source}: key {slot!r} is missing (it names a {kind.name} component)")
        return
    value = body[field]
    if not kind.many:
        yield slot, _node(recipe, slot, value)
        return
    if not isinstance(value, list):
        raise RecipeError(f"{recipe.source}: key {slot!r} must be a list of {{name, args}} entries")
    for i, node in enumerate(value):
        yield f"{slot}[{i}]", _node(recipe, f"{slot}[{i}]", node)


def _node(recipe: Recipe, key: str, node: Any) -> dict[str, Any]:
    if isinstance(node, str):
        return {"name": node, "args": {}}
    if not isinstance(node, dict) or "name" not in node:
        raise RecipeError(f"{recipe.source}: key {key!r} must be a component name or a mapping with 'name'")
    extra = set(node) - {"name", "args"}
    if extra:
        raise RecipeError(f"{recipe.source}: key {key!r} has unexpected keys {sorted(extra)}; use 'name' and 'args'")
    args = node.get("args") or {}
    if not isinstance(args, dict):
        raise RecipeError(f"{recipe.source}: key {key}.args must be a mapping")
    return {"name": node["name"], "args": args}


def validate(recipe: Recipe) -> list[tuple[str, str, str]]:
    """Resolve every component name, bind every ``args`` block and check the plain settings; build nothing.

    Returns ``(key, kind, name)`` for each component. Raises :class:`RecipeError` naming file and key.
    """
    from .manager import registry, settings_schemas
    from .settings import parse_settings

    known = {slot.split(".", 1)[0] for slot in slots()} | set(settings_schemas())
    unknown = sorted(set(recipe.config) - known)
    if unknown:
        raise RecipeError(f"{recipe.source}: unknown section {unknown[0]!r}; sections: {', '.join(sorted(known))}")
    checked = []
    for key, kind, node in components(recipe):
        try:
            registry(kind).bind(node["name"], node["args"])
        except Panel2PatchError as exc:
            raise RecipeError(f"{recipe.source}: key {key!r}: {exc}") from None
        checked.append((key, kind, node["name"]))
    for section, schema in settings_schemas().items():
        body = recipe.config.get(section)
        if isinstance(body, dict):
            keys = component_keys(section)
            parse_settings(schema, {k: v for k, v in body.items() if k not in keys}, section, recipe.source)
    return checked


def build(recipe: Recipe, slot: str) -> Any:
    """Build the component(s) at ``slot`` (a list for list slots, None for an absent optional slot)."""
    from .manager import build as build_component

    kind = slots()[slot]
    built = []
    for key, node in _slot_nodes(recipe, slot, kind):
        try:
            built.append(build_component(kind.name, node["name"], node["args"]))
        except Panel2PatchError as exc:
            raise RecipeError(f"{recipe.source}: key {key!r}: {exc}") from None
    if kind.many:
        return built
    return built[0] if built else None


def copy(name: str, dest: str) -> Path:
    src = locate(name)
    target = Path(dest)
    if target.is_dir():
        target = target / src.name
    if target.exists():
        raise RecipeError(f"{target} exists; choose another destination or remove it first")
    shutil.copyfile(src, target)
    return target
