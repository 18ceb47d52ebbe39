"""Component kinds, the named factories of each kind, and binding of recipe ``args`` to their signatures."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import PluginError, RecipeError, UnknownComponentError


@dataclass(frozen=True)
class Kind:
    """A component kind: the hook that registers its components, their base class, and the recipe slot
    (``"mine.parser"``) that selects them (None: not chosen by recipes, such as commands).

    ``many``: the slot holds a list; ``required``: a recipe with that section must fill the slot.
    """

    name: str
    hook: str
    base: type
    slot: str | None = None
    many: bool = False
    required: bool = False


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[..., Any]
    owner: str

    @property
    def target(self) -> str:
        """``module:qualname`` of the factory: where a registered name's code lives."""
        return f"{getattr(self.factory, '__module__', '?')}:{getattr(self.factory, '__qualname__', repr(self.factory))}"


class Registry:
    """Components of one kind (``"figure_parsers"``, ``"box_cleaners"`` ...) keyed by name."""

    def __init__(self, kind: str, base: type | None = None) -> None:
        self.kind, self.base = kind, base
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, factory: Callable[..., Any], owner: str) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {owner!r} registered a {self.kind} component with name {name!r}")
        if not callable(factory):
            raise PluginError(f"plugin {owner!r} registered {self.kind} {name!r} with a non-callable factory")
        if name in self._entries:
            first = self._entries[name].owner
            raise PluginError(
                f"{self.kind} name {name!r} is registered twice: by plugin {first!r} and by plugin "
                f"{owner!r}; block one of them (PANEL2PATCH_BLOCK_PLUGINS) or rename the component")
        self._entries[name] = Entry(name, factory, owner)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __iter__(self):
        return iter(self._entries.values())

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            available = ", ".join(self.names()) or "none"
            raise UnknownComponentError(f"unknown {self.kind} component {name!r}; available: {available}") from None

    def bind(self, name: str, args: Mapping[str, Any] | None) -> inspect.BoundArguments:
        """Check ``args`` against the factory's signature and annotations without calling it."""
        entry, args = self.get(name), dict(args or {})
        sig = inspect.signature(entry.factory)
        params = sig.parameters
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
        unknown = [k for k in args if k not in params and not takes_kwargs]
        if unknown:
            accepted = ", ".join(p for p in params if params[p].kind is not params[p].VAR_KEYWORD) or "none"
            raise RecipeError(f"{self.kind} {name!r} takes no argument {unknown[0]!r}; it accepts: {accepted}")
        try:
            bound = sig.bind(**args)
        except TypeError as exc:
            raise RecipeError(f"{self.kind} {name!r}: {exc}") from None
        try:
            hints = typing.get_type_hints(entry.factory.__init__ if inspect.isclass(entry.factory) else entry.factory)
        except Exception:  # unresolvable forward references: skip type checks rather than guess
            hints = {}
        for key, value in bound.arguments.items():
            hint = hints.get(key)
            if hint is not None and not matches(value, hint):
                expected = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
                got = f"{type(value).__name__} {value!r}"
                raise RecipeError(f"{self.kind} {name!r} argument {key!r} expects {expected}, got {got}")
        return bound

    def build(self, name: str, args: Mapping[str, Any] | None = None) -> Any:
        bound = self.bind(name, args)
        try:
            instance = self.get(name).factory(*bound.args, **bound.kwargs)
        except (ValueError, TypeError) as exc:  # a value the factory refuses: the recipe's fault, not a crash
            raise RecipeError(f"{self.kind} {name!r}: {exc}") from None
        if self.base is not None and not isinstance(instance, self.base):
            raise PluginError(
                f"{self.kind} {name!r} (plugin {self.get(name).owner!r}) built a "
                f"{type(instance).__name__}, not a {self.base.__name__}")
        return instance


def matches(value: Any, hint: Any) -> bool:
    """Whether a plain YAML value (None, bool, int, float, str, list, dict) fits a type annotation: pydantic in strict
    mode (``"3"`` is no int, ``True`` no number); a YAML list stands for a tuple; what pydantic cannot check passes."""
    from pydantic import ConfigDict, TypeAdapter, ValidationError
    from pydantic.errors import PydanticSchemaGenerationError

    if typing.get_origin(hint) is tuple and isinstance(value, list):
        value = tuple(value)
    try:
        TypeAdapter(hint, config=ConfigDict(strict=True, arbitrary_types_allowed=True)).validate_python(value)
    except ValidationError:
        return False
    except (PydanticSchemaGenerationError, TypeError):
        return True
    return True
