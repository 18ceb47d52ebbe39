"""Recipes: OmegaConf YAML run descriptions, addressed by shipped name or by path (format: ``docs/recipes.md``).

A recipe names components by registered name, each with its own ``args`` (``parser: {name: cpu_layout, args: {...}}``)
in the slot its kind declares (:class:`~panel2patch.registry.Kind`). The other keys of a section are plain settings,
checked against the dataclass the section registers (``register_settings``) as an OmegaConf structured config, whose
``check`` refuses what a type cannot say. Overrides are OmegaConf dotlists merged on top."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from .errors import Panel2PatchError, RecipeError
from .images import MAX_PIXELS
from .manager import build as build_component
from .manager import kinds, registry, settings_schemas

T = TypeVar("T")

@dataclass
class Recipe:
    """A resolved recipe: ``config`` is a plain dict (interpolations resolved); ``recorded`` is what runs write out,
    interpolations unresolved, so that ``${oc.env:...}`` values never land in manifests or run folders."""

    source: str
    config: dict[str, Any]
    recorded: dict[str, Any] | None = None

    def section(self, name: str) -> dict[str, Any]:
        if name not in self.config:
            raise RecipeError(f"{self.source}: recipe has no {name!r} section (it has: {', '.join(self.config)})")
        return self.config[name]


def shipped() -> dict[str, Path]:
    """Shipped recipes by name."""
    root = resources.files("panel2patch.recipes")
    return {p.name[: -len(".yaml")]: Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


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
            "(or give a path to a .yaml file)")
    return recipes[name_or_path]


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
    for override in overrides:
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
        where = f" key {exc.full_key!r}:" if getattr(exc, "full_key", None) else ""
        raise RecipeError(f"{source}:{where} {exc}") from None
    if not isinstance(config, dict):
        raise RecipeError(f"{source}: a recipe is a mapping of sections (mine, train, ...)")
    return Recipe(source, config, OmegaConf.to_container(cfg, resolve=False))


def slots() -> dict[str, Any]:
    """Recipe slot (``"mine.parser"``) -> the :class:`~panel2patch.registry.Kind` that fills it."""
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
    """Resolve every component name, bind every ``args`` block and check the plain settings; build nothing. Returns
    ``(key, kind, name)`` for each component. Raises :class:`RecipeError` naming file and key."""
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
    for section in settings_schemas():
        if section in recipe.config:
            settings(recipe, section)
    return checked


def build(recipe: Recipe, slot: str) -> Any:
    """Build the component(s) at ``slot`` (a list for list slots, None for an absent optional slot)."""
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


def settings(recipe: Recipe, section: str) -> Any:
    """The plain settings of ``section`` checked against its registered schema (None when none is registered)."""
    schema = settings_schemas().get(section)
    body = recipe.config.get(section) or {}
    if schema is None:
        return None
    if not isinstance(body, dict):
        raise RecipeError(f"{recipe.source}: key {section!r} must be a mapping")
    keys = component_keys(section)
    return parse_settings(schema, {k: v for k, v in body.items() if k not in keys}, section, recipe.source)


def positive(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


@dataclass
class MineSettings:
    """The plain keys of ``mine``: ``chunk_size`` items per atomically committed chunk; ``max_pixels``
    the largest image (width x height) decoded, larger ones are rejected as likely decompression bombs."""

    chunk_size: int = 256
    max_pixels: int = MAX_PIXELS

    def check(self) -> None:
        positive("chunk_size", self.chunk_size)
        positive("max_pixels", self.max_pixels)


def parse_settings(schema: type[T], values: Mapping[str, Any], section: str, source: str) -> T:
    """``values`` checked against ``schema`` and instantiated; errors name ``source`` and the key."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        settings = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.create(dict(values))))
        _check(settings)
        return settings
    except OmegaConfBaseException as exc:
        key = f"{section}.{exc.full_key}" if getattr(exc, "full_key", None) else section
        message = str(getattr(exc, "msg", None) or exc).splitlines()[0]
        raise RecipeError(f"{source}: key {key}: {message}") from None
    except ValueError as exc:
        raise RecipeError(f"{source}: key {section}.{exc}") from None


def _check(settings: Any) -> None:
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            try:
                _check(value)
            except ValueError as exc:
                raise ValueError(f"{f.name}.{exc}") from None  # messages start with the field name
    check = getattr(settings, "check", None)
    if check is not None:
        check()
