"""Schemas of a recipe's plain settings (everything in a section that is not a component), as OmegaConf
structured configs: unknown keys and wrong types are refused with the file and key; a schema's
``check`` refuses what a type cannot say (positive sizes, finite rates). The kernel owns ``mine``'s;
plugins register the schemas of their sections through ``register_settings``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import RecipeError
from .images import MAX_PIXELS

T = TypeVar("T")


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
        merged = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.create(dict(values)))
        settings = OmegaConf.to_object(merged)
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


def parse_mine_settings(section: Mapping[str, Any], source: str, component_keys: tuple[str, ...] = ()) -> MineSettings:
    """The plain keys of a recipe's ``mine`` section (keys in ``component_keys`` are left out)."""
    return parse_settings(MineSettings, {k: v for k, v in section.items() if k not in component_keys}, "mine", source)
