"""The plugin manager: built-in plugins, entry-point plugins, and one registry per component kind.

Nothing is loaded at import. :func:`plugin_manager` builds the manager on first use (idempotent);
:func:`registry` collects a kind's registrations on first use.

Environment:

``PANEL2PATCH_BLOCK_PLUGINS``
    Comma-separated plugin names never to register (built-ins by their module name such as
    ``panel2patch.plugins.cleaners``, third-party plugins by entry-point name).
``PANEL2PATCH_DISABLE_PLUGIN_AUTOLOAD``
    When set to a non-empty value other than ``0``, entry-point plugins are not loaded.
``PANEL2PATCH_TRACE_HOOKS``
    When set, every hook call and its result is written to stderr.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

import pluggy

from . import components, hookspecs
from .errors import PluginError
from .registry import Registry

ENTRY_POINT_GROUP = "panel2patch"
ENV_BLOCK = "PANEL2PATCH_BLOCK_PLUGINS"
ENV_NO_AUTOLOAD = "PANEL2PATCH_DISABLE_PLUGIN_AUTOLOAD"
ENV_TRACE = "PANEL2PATCH_TRACE_HOOKS"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "panel2patch.parsers.layout",
    "panel2patch.parsers.markers",
    "panel2patch.parsers.captions",
    "panel2patch.plugins.sources",
    "panel2patch.plugins.regions",
    "panel2patch.plugins.cleaners",
    "panel2patch.plugins.writers",
    "panel2patch.plugins.models",
    "panel2patch.plugins.levels",
    "panel2patch.plugins.aggregators",
    "panel2patch.plugins.schedules",
    "panel2patch.objectives.losses",
)


@dataclass(frozen=True)
class Kind:
    name: str
    hook: str
    base: type


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("figure_parsers", "register_figure_parsers", components.FigureParser),
        Kind("marker_detectors", "register_marker_detectors", components.MarkerDetector),
        Kind("caption_splitters", "register_caption_splitters", components.CaptionSplitter),
        Kind("region_miners", "register_region_miners", components.RegionMiner),
        Kind("box_cleaners", "register_box_cleaners", components.BoxCleaner),
        Kind("sources", "register_sources", components.Source),
        Kind("writers", "register_writers", components.Writer),
        Kind("model_loaders", "register_model_loaders", components.ModelLoader),
        Kind("levels", "register_levels", components.GranularityLevel),
        Kind("aggregators", "register_aggregators", components.Aggregator),
        Kind("loss_terms", "register_loss_terms", components.LossTerm),
        Kind("schedules", "register_schedules", components.Schedule),
    )
}

_lock = threading.Lock()
_pm: pluggy.PluginManager | None = None
_registries: dict[str, Registry] = {}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def blocked_plugins() -> list[str]:
    return [n.strip() for n in os.environ.get(ENV_BLOCK, "").split(",") if n.strip()]


def _build() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for name in blocked_plugins():
        pm.set_blocked(name)
    for module_name in DEFAULT_PLUGINS:
        if pm.is_blocked(module_name):
            continue
        pm.register(importlib.import_module(module_name), name=module_name)
    if not _env_flag(ENV_NO_AUTOLOAD):
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:
            raise PluginError(f"loading entry-point plugins of group {ENTRY_POINT_GROUP!r} failed: {exc}") from exc
    pm.hook.add_hookspecs.call_historic(kwargs={"pluginmanager": pm})
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"a plugin implements a hook that does not exist: {exc}") from exc
    if _env_flag(ENV_TRACE):
        _trace(pm)
    return pm


def _trace(pm: pluggy.PluginManager) -> None:
    def before(hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        owners = ", ".join(i.plugin_name for i in impls)
        print(f"[panel2patch hook] {hook_name}({', '.join(kwargs)}) -> [{owners}]", file=sys.stderr)

    def after(outcome: Any, hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        exc = outcome.exception
        status = f"raised {exc!r}" if exc is not None else "ok"
        print(f"[panel2patch hook] {hook_name} {status}", file=sys.stderr)

    pm.add_hookcall_monitoring(before, after)


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first call."""
    global _pm
    with _lock:
        if _pm is None:
            _pm = _build()
        return _pm


def reset() -> None:
    """Forget the plugin manager and registries; the next call rebuilds them (reads the environment)."""
    global _pm
    with _lock:
        _pm = None
        _registries.clear()


def registry(kind: str) -> Registry:
    """The registry of ``kind`` (a key of :data:`KINDS`), filled by every plugin on first use."""
    if kind not in KINDS:
        raise PluginError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")
    pm = plugin_manager()
    with _lock:
        if kind not in _registries:
            _registries[kind] = _collect(pm, KINDS[kind])
        return _registries[kind]


def _collect(pm: pluggy.PluginManager, kind: Kind) -> Registry:
    reg = Registry(kind.name, kind.base)
    hook_caller = getattr(pm.hook, kind.hook)
    for impl in hook_caller.get_hookimpls():
        # Call each plugin on its own so that a registration knows its owner; the subset caller
        # still goes through pluggy's hook execution (tracing included).
        others = [p for p in pm.get_plugins() if p is not impl.plugin]
        owner = impl.plugin_name

        def register(name: str, factory: Any, _owner: str = owner) -> None:
            reg.add(name, factory, _owner)

        pm.subset_hook_caller(kind.hook, remove_plugins=others)(register=register)
    return reg


def build(kind: str, name: str, args: dict[str, Any] | None = None) -> Any:
    """Build the component ``name`` of ``kind`` with ``args``."""
    return registry(kind).build(name, args)


def plugin_version(pm: pluggy.PluginManager, plugin: object) -> tuple[str, str]:
    """(distribution name, version) of a plugin."""
    for p, dist in pm.list_plugin_distinfo():
        if p is plugin:
            return dist.metadata["name"], dist.version
    from . import __version__

    return "panel2patch", __version__


def describe_plugins() -> list[dict[str, Any]]:
    """Each registered plugin with its distribution, version, hooks and registered component names."""
    pm = plugin_manager()
    owned: dict[str, dict[str, list[str]]] = {}
    for kind in KINDS:
        for entry in registry(kind):
            owned.setdefault(entry.owner, {}).setdefault(kind, []).append(entry.name)
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda np: np[0]):
        if plugin is None:
            continue
        dist, version = plugin_version(pm, plugin)
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        rows.append(
            {"name": name, "distribution": dist, "version": version, "hooks": hooks, "components": owned.get(name, {})}
        )
    return rows
