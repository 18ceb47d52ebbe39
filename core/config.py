"""Recipes: OmegaConf YAML run descriptions, addressed by shipped name or by path.

A recipe names components by registered name, each with its own ``args``::

    mine:
      parser: {name: layout, args: {min_panel_frac: 0.02}}
      cleaners:
        - {name: clip}
        - {name: nms, args: {iou: 0.5}}

:data:`SLOTS` lists where components sit and which kind each slot takes. Command-line overrides are
OmegaConf dotlists (``mine.parser.args.min_panel_frac=0.05``) merged on top; launcher flags such as
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

#: slot path -> (component kind, whether the slot holds a list, whether the section requires it)
SLOTS: dict[str, tuple[str, bool, bool]] = {
    "mine.source": ("sources", False, True),
    "mine.parser": ("figure_parsers", False, True),
    "mine.markers": ("marker_detectors", False, False),
    "mine.splitter": ("caption_splitters", False, True),
    "mine.regions": ("region_miners", False, False),
    "mine.cleaners": ("box_cleaners", True, False),
    "mine.writer": ("writers", False, True),
    "train.model": ("model_loaders", False, True),
    "train.levels": ("levels", True, True),
    "train.aggregator": ("aggregators", False, False),
    "train.losses": ("loss_terms", True, True),
    "train.schedule": ("schedules", False, True),
}
SECTIONS = ("mine", "train", "eval")
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
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    import yaml

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
        raise RecipeError(f"{source}: a recipe is a mapping of sections ({', '.join(SECTIONS)})")
    return Recipe(source, config)


def components(recipe: Recipe) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every component reference as ``(key, kind, node)``; ``key`` like ``mine.cleaners[1]``."""
    for slot, (kind, is_list, required) in SLOTS.items():
        section, field = slot.split(".")
        if section not in recipe.config:
            continue
        body = recipe.config[section]
        if not isinstance(body, dict):
            raise RecipeError(f"{recipe.source}: key {section!r} must be a mapping")
        if field not in body or body[field] is None:
            if required:
                raise RecipeError(f"{recipe.source}: key {slot!r} is missing (it names a {kind} component)")
            continue
        value = body[field]
        if is_list:
            if not isinstance(value, list):
                raise RecipeError(f"{recipe.source}: key {slot!r} must be a list of {{name, args}} entries")
            for i, node in enumerate(value):
                yield f"{slot}[{i}]", kind, _node(recipe, f"{slot}[{i}]", node)
        else:
            yield slot, kind, _node(recipe, slot, value)


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
    """Resolve every component name and bind every ``args`` block; build nothing.

    Returns ``(key, kind, name)`` for each component. Raises :class:`RecipeError` naming file and key.
    """
    from .manager import registry

    if not any(s in recipe.config for s in SECTIONS):
        raise RecipeError(f"{recipe.source}: recipe has none of the sections {', '.join(SECTIONS)}")
    checked = []
    for key, kind, node in components(recipe):
        try:
            registry(kind).bind(node["name"], node["args"])
        except Panel2PatchError as exc:
            raise RecipeError(f"{recipe.source}: key {key!r}: {exc}") from None
        checked.append((key, kind, node["name"]))
    if "train" in recipe.config:
        from .engine import parse_train_config  # torch-free: reads the plain training settings

        parse_train_config(recipe.config["train"], recipe.source)
    return checked


def build(recipe: Recipe, slot: str) -> Any:
    """Build the component(s) at ``slot`` (a list for list slots, None for an absent optional slot)."""
    from .manager import build as build_component

    kind, is_list, _ = SLOTS[slot]
    built = []
    found = False
    for key, _kind, node in components(recipe):
        if key == slot or key.startswith(slot + "["):
            found = True
            try:
                built.append(build_component(kind, node["name"], node["args"]))
            except Panel2PatchError as exc:
                raise RecipeError(f"{recipe.source}: key {key!r}: {exc}") from None
    if is_list:
        return built
    return built[0] if found else None


def copy(name: str, dest: str) -> Path:
    src = locate(name)
    target = Path(dest)
    if target.is_dir():
        target = target / src.name
    if target.exists():
        raise RecipeError(f"{target} exists; choose another destination or remove it first")
    shutil.copyfile(src, target)
    return target
