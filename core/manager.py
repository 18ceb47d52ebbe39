"""The plugin manager: kernel, built-in and entry-point plugins, and one registry per component kind. Nothing loads
at import: :func:`plugin_manager` builds the manager, :func:`registry` collects a kind's registrations on first use.

Environment: ``PANEL2PATCH_BLOCK_PLUGINS`` (comma-separated plugin names never to register: built-ins by module name,
others by entry-point name), ``PANEL2PATCH_DISABLE_PLUGIN_AUTOLOAD`` (non-empty, not ``0``: no entry-point plugins),
``PANEL2PATCH_TRACE_HOOKS`` (every hook call and its outcome written to stderr)."""

from __future__ import annotations

import importlib
import os
import sys
import threading
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import Kind, Registry

ENTRY_POINT_GROUP = "panel2patch"
ENV_BLOCK = "PANEL2PATCH_BLOCK_PLUGINS"
ENV_NO_AUTOLOAD = "PANEL2PATCH_DISABLE_PLUGIN_AUTOLOAD"
ENV_TRACE = "PANEL2PATCH_TRACE_HOOKS"

KERNEL_PLUGINS: tuple[str, ...] = ("panel2patch.components",)  # always registered, cannot be blocked
#: Built-in plugins, registered like third-party ones (and blockable like them).
DEFAULT_PLUGINS: tuple[str, ...] = tuple(f"panel2patch.{m}" for m in (
    "plugins.commands", "parsers.plugin", "parsers.lvlm.plugin", "parsers.tools.commands", "plugins.sources",
    "plugins.pmc", "plugins.regions", "plugins.lvlm_stages", "plugins.cleaners", "plugins.writers", "plugins.report",
    "plugins.corpus_tools", "plugins.export_pairs", "plugins.demo.plugin", "plugins.training.commands", "plugins.models",
    "plugins.levels", "plugins.aggregators", "plugins.schedules", "objectives.losses", "plugins.evaluation.commands",
    "plugins.evaluation.plugin"))

_lock = threading.Lock()
_pm: pluggy.PluginManager | None = None
_registries: dict[str, Registry] = {}
_kinds: dict[str, Kind] = {}
_schemas: dict[str, type] = {}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def _build() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for module_name in KERNEL_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    for name in filter(None, (n.strip() for n in os.environ.get(ENV_BLOCK, "").split(","))):
        if name in KERNEL_PLUGINS:
            raise PluginError(f"{name!r} is part of the kernel and cannot be blocked ({ENV_BLOCK})")
        pm.set_blocked(name)
    for module_name in DEFAULT_PLUGINS:
        if pm.is_blocked(module_name):
            continue
        try:
            pm.register(importlib.import_module(module_name), name=module_name)
        except Exception as exc:
            raise PluginError(f"built-in plugin {module_name!r} failed to load: {type(exc).__name__}: {exc}") from exc
    if not _env_flag(ENV_NO_AUTOLOAD):
        _load_entry_points(pm)
    try:
        pm.hook.add_hookspecs.call_historic(kwargs={"pluginmanager": pm})
    except Exception as exc:
        raise PluginError(f"{_hookspecs_culprit(pm)} failed in add_hookspecs: {type(exc).__name__}: {exc}") from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"plugin {pm.get_name(exc.plugin)!r} implements a hook that no spec declares: {exc}; "
            "declare it with add_hookspecs or fix the name") from None
    if _env_flag(ENV_TRACE):
        _trace(pm)
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """``pm.load_setuptools_entrypoints``; when it fails, the plugin that fails to import is named."""
    from importlib import metadata

    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except Exception as exc:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):  # only now: find which one it was
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                ep.load()
            except Exception as culprit:
                raise PluginError(
                    f"plugin {ep.name!r} (entry point {ep.value!r} of {ep.dist.name if ep.dist else '?'}) failed to "
                    f"load: {type(culprit).__name__}: {culprit}; uninstall it or block it with {ENV_BLOCK}={ep.name}"
                ) from culprit
        raise PluginError(f"registering entry-point plugins of group {ENTRY_POINT_GROUP!r} failed: {exc}") from exc


def _hookspecs_culprit(pm: pluggy.PluginManager) -> str:
    """The plugin whose ``add_hookspecs`` fails (pluggy's error names the spec class it clashes with), found by
    replaying the calls on a scratch manager."""
    scratch = pluggy.PluginManager(ENTRY_POINT_GROUP)
    scratch.add_hookspecs(hookspecs)
    for impl in reversed(pm.hook.add_hookspecs.get_hookimpls()):  # pluggy's call order
        try:
            impl.function(pluginmanager=scratch)
        except Exception:
            return f"plugin {impl.plugin_name!r}"
    return "a plugin"


def _trace(pm: pluggy.PluginManager) -> None:
    def before(hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        print(f"[panel2patch hook] {hook_name}({', '.join(kwargs)}) -> [{', '.join(i.plugin_name for i in impls)}]",
              file=sys.stderr)

    def after(outcome: Any, hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        print(f"[panel2patch hook] {hook_name} {'ok' if outcome.exception is None else f'raised {outcome.exception!r}'}",
              file=sys.stderr)

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
        _kinds.clear()
        _schemas.clear()


def kinds() -> dict[str, Kind]:
    """Every component kind by name: the kernel's and those plugins add (hook ``register_kinds``)."""
    pm = plugin_manager()
    with _lock:
        if not _kinds:
            _kinds.update(_collect_kinds(pm))
        return dict(_kinds)


def settings_schemas() -> dict[str, type]:
    """Recipe section -> the schema of its plain settings (hook ``register_settings``)."""
    pm = plugin_manager()
    with _lock:
        if not _schemas:
            _schemas.update({k: v for k, (v, _) in _unique(pm, "register_settings", "settings of section").items()})
        return dict(_schemas)


def _unique(pm: pluggy.PluginManager, hook: str, what: str) -> dict[str, tuple[Any, str]]:
    """``{name: (value, owner)}`` of a hook's registrations; a name registered twice is an error naming both."""
    found: dict[str, tuple[Any, str]] = {}
    for owner, name, value in _each_registration(pm, hook):
        if name in found:
            raise PluginError(f"{what} {name!r} is registered twice: by plugin {found[name][1]!r} and by {owner!r}")
        found[name] = (value, owner)
    return found


def _collect_kinds(pm: pluggy.PluginManager) -> dict[str, Kind]:
    slots: dict[str, str] = {}
    found = _unique(pm, "register_kinds", "component kind")
    for name, (spec, owner) in found.items():
        if not isinstance(spec, Kind):
            raise PluginError(f"plugin {owner!r} registered kind {name!r} with a {type(spec).__name__}, not a Kind")
        if not hasattr(pm.hook, spec.hook):
            raise PluginError(
                f"plugin {owner!r} declares kind {name!r} with hook {spec.hook!r}, which no hook spec declares; "
                "add the spec with add_hookspecs")
        if spec.slot is not None:
            if spec.slot in slots:
                raise PluginError(f"recipe slot {spec.slot!r} is claimed by kinds {slots[spec.slot]!r} and {name!r}")
            slots[spec.slot] = name
    return {name: spec for name, (spec, _) in found.items()}


def _each_registration(pm: pluggy.PluginManager, hook: str):
    """``(owner, name, value)`` for every ``register(name, value)`` call of ``hook``, plugin by plugin."""
    for impl in getattr(pm.hook, hook).get_hookimpls():
        # Call each plugin on its own so that a registration knows its owner; the subset caller
        # still goes through pluggy's hook execution (tracing included).
        others = [p for p in pm.get_plugins() if p is not impl.plugin]
        calls: list[tuple[str, Any]] = []

        def register(name: str, value: Any, _calls: list[tuple[str, Any]] = calls) -> None:
            _calls.append((name, value))

        try:
            pm.subset_hook_caller(hook, remove_plugins=others)(register=register)
        except Exception as exc:
            raise PluginError(f"plugin {impl.plugin_name!r} failed in {hook}: {type(exc).__name__}: {exc}") from exc
        for name, value in calls:
            yield impl.plugin_name, name, value


def registry(kind: str) -> Registry:
    """The registry of ``kind`` (a key of :func:`kinds`), collected on first use; the recipe kinds are collected
    together, so that a name taken by two of them is an error."""
    specs = kinds()
    if kind not in specs:
        raise PluginError(f"unknown component kind {kind!r}; kinds: {', '.join(specs)}")
    pm = plugin_manager()
    with _lock:
        if kind not in _registries:
            alone = specs[kind].slot is None
            _registries.update(_collect(pm, [specs[kind]] if alone else [k for k in specs.values() if k.slot]))
        return _registries[kind]


def _collect(pm: pluggy.PluginManager, specs: list[Kind]) -> dict[str, Registry]:
    registries: dict[str, Registry] = {}
    where: dict[str, str] = {}
    for spec in specs:
        reg = registries[spec.name] = Registry(spec.name, spec.base)
        for owner, name, factory in _each_registration(pm, spec.hook):
            reg.add(name, factory, owner)
            if name in where and where[name] != spec.name:
                first = registries[where[name]].get(name).owner
                raise PluginError(
                    f"component name {name!r} is registered as {where[name]} (by plugin {first!r}) and as "
                    f"{spec.name} (by plugin {owner!r}); names must be unique across kinds")
            where[name] = spec.name
    return registries


def build(kind: str, name: str, args: dict[str, Any] | None = None) -> Any:
    return registry(kind).build(name, args)
