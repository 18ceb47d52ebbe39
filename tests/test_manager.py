"""The plugin manager: built-ins as ordinary plugins, blocking, autoload switch, tracing, laziness."""

import subprocess
import sys
import types
from pathlib import Path

import pytest

from panel2patch import manager
from panel2patch.components import BoxCleaner
from panel2patch.errors import PluginError
from panel2patch.hookspecs import hookimpl


class KeepAll(BoxCleaner):
    def clean(self, figure):
        return figure


class ExtraCleaners:
    @hookimpl
    def register_box_cleaners(self, register):
        register("keep_all", KeepAll)


HEAVY = ("torch", "transformers", "deepspeed", "onnxruntime", "vllm", "cv2", "skimage", "open_clip")


def _run_then_list_heavy(code: str) -> list[str]:
    """Output lines of ``code`` run in a new interpreter, then the HEAVY modules it left loaded."""
    probe = f"{code}; import sys; print(*[x for x in {HEAVY!r} if x in sys.modules], sep=',')"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()


KERNEL = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "core").glob("*.py") if p.stem != "__main__")


def test_importing_every_kernel_module_loads_no_plugin_and_no_heavy_library():
    code = f"import importlib; [importlib.import_module('panel2patch.' + m) for m in {KERNEL!r} if m != '__init__'];" \
           "import panel2patch.manager as m; print(m._pm is None)"
    assert _run_then_list_heavy(code) == ["True", ""]


def test_building_the_command_line_and_every_registry_imports_no_heavy_library():
    code = ("from panel2patch import cli, manager; cli.build_parser();"
            "[manager.registry(k) for k in manager.kinds()]; print(len(manager.DEFAULT_PLUGINS))")
    lines = _run_then_list_heavy(code)
    assert int(lines[0]) > 10 and lines[1] == ""


def test_the_command_line_is_built_without_numpy_pil_or_any_component_implementation():
    code = ("import sys; from panel2patch import cli; cli.build_parser();"
            "print('numpy' in sys.modules, 'PIL' in sys.modules, 'panel2patch.parsers.layout.parser' in sys.modules)")
    assert _run_then_list_heavy(code) == ["False False False", ""]


def test_plugin_manager_is_built_once():
    assert manager.plugin_manager() is manager.plugin_manager()


def test_builtins_register_through_the_same_hooks():
    pm = manager.plugin_manager()
    for module in manager.DEFAULT_PLUGINS:
        assert pm.get_plugin(module) is not None
    owners = {entry.owner for entry in manager.registry("box_cleaners")}
    assert owners == {"panel2patch.plugins.cleaners"}


def test_extra_plugin_registers_a_component(add_plugin):
    add_plugin(ExtraCleaners(), "extra")
    entry = manager.registry("box_cleaners").get("keep_all")
    assert entry.owner == "extra"
    assert isinstance(manager.build("box_cleaners", "keep_all"), KeepAll)


def test_duplicate_name_across_plugins_names_both(add_plugin):
    class Clash:
        @hookimpl
        def register_box_cleaners(self, register):
            register("clip_to_image", KeepAll)

    add_plugin(Clash(), "clash")
    with pytest.raises(PluginError, match="'clip_to_image' is registered twice.*panel2patch.plugins.cleaners.*clash"):
        manager.registry("box_cleaners")


def test_a_name_used_by_two_recipe_kinds_is_refused(add_plugin):
    class SameNameAsACleaner:
        @hookimpl
        def register_aggregators(self, register):
            register("box_nms", KeepAll)

    add_plugin(SameNameAsACleaner(), "clash")
    with pytest.raises(PluginError, match="'box_nms' is registered as box_cleaners.*as aggregators.*clash.*unique across kinds"):
        manager.registry("schedules")


def test_a_plugin_failing_in_a_registration_hook_is_named(add_plugin):
    class Broken:
        @hookimpl
        def register_box_cleaners(self, register):
            raise RuntimeError("no config file")

    add_plugin(Broken(), "broken-plugin")
    with pytest.raises(PluginError, match="plugin 'broken-plugin' failed in register_box_cleaners: RuntimeError: no config file"):
        manager.registry("box_cleaners")


def test_a_builtin_that_fails_to_import_is_named(monkeypatch):
    monkeypatch.setattr(manager, "DEFAULT_PLUGINS", (*manager.DEFAULT_PLUGINS, "panel2patch.plugins.no_such_module"))
    with pytest.raises(PluginError, match="built-in plugin 'panel2patch.plugins.no_such_module' failed to load"):
        manager.plugin_manager()


def test_kernel_plugins_cannot_be_blocked(monkeypatch):
    monkeypatch.setenv(manager.ENV_BLOCK, "panel2patch.components")
    with pytest.raises(PluginError, match="'panel2patch.components' is part of the kernel and cannot be blocked"):
        manager.plugin_manager()


def test_blocked_builtin_is_not_registered(monkeypatch):
    monkeypatch.setenv(manager.ENV_BLOCK, "panel2patch.plugins.cleaners, other")
    manager.reset()
    assert manager.plugin_manager().get_plugin("panel2patch.plugins.cleaners") is None
    assert manager.registry("box_cleaners").names() == []


def test_unknown_hook_implementation_fails_with_panel2patchs_error(monkeypatch):
    typo = types.ModuleType("typo_plugin")

    @hookimpl
    def register_box_cleanerz(register):
        pass

    typo.register_box_cleanerz = register_box_cleanerz
    monkeypatch.setitem(sys.modules, "typo_plugin", typo)
    monkeypatch.setattr(manager, "DEFAULT_PLUGINS", (*manager.DEFAULT_PLUGINS, "typo_plugin"))
    with pytest.raises(PluginError, match="plugin 'typo_plugin' implements a hook that no spec declares.*register_box_cleanerz"):
        manager.plugin_manager()


def test_two_plugins_adding_the_same_hook_spec_are_both_named(monkeypatch):
    import pluggy

    spec = pluggy.HookspecMarker("panel2patch")
    for name in ("stains_a", "stains_b"):
        module = types.ModuleType(name)
        specs = type("StainSpecs", (), {"register_stainers": spec(lambda register: None), "__module__": name})

        @hookimpl
        def add_hookspecs(pluginmanager, _specs=specs):
            pluginmanager.add_hookspecs(_specs)

        module.add_hookspecs = add_hookspecs
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(manager, "DEFAULT_PLUGINS", (*manager.DEFAULT_PLUGINS, "stains_a", "stains_b"))
    # pluggy calls the plugin registered last first: stains_b adds the spec, stains_a clashes with it
    with pytest.raises(PluginError, match="plugin 'stains_a' failed in add_hookspecs: .*'register_stainers' is already "
                                          "registered within namespace <class 'stains_b.StainSpecs'>"):
        manager.plugin_manager()


def test_unknown_kind_lists_kinds():
    with pytest.raises(PluginError, match="unknown component kind 'parsers'.*figure_parsers"):
        manager.registry("parsers")


def test_trace_env_prints_hook_calls(monkeypatch, capsys):
    monkeypatch.setenv(manager.ENV_TRACE, "1")
    manager.reset()
    manager.registry("box_cleaners")
    err = capsys.readouterr().err
    assert "[panel2patch hook] register_box_cleaners(register) -> [panel2patch.plugins.cleaners]" in err


def test_lifecycle_hooks_reach_observers(add_plugin):
    from panel2patch.run import RunInfo

    seen = []

    class Observer:
        @hookimpl
        def on_stage_end(self, run, stage, summary, is_main):
            seen.append((run.command, stage, summary, is_main))

    add_plugin(Observer(), "observer")
    run = RunInfo("mine", {}, "out", rank=1, world_size=2)
    manager.plugin_manager().hook.on_stage_end(run=run, stage="parse", summary={"n": 1}, is_main=run.is_main)
    assert seen == [("mine", "parse", {"n": 1}, False)]


def test_describe_plugins_lists_versions_hooks_and_components():
    from panel2patch.plugins.commands import describe_plugins

    rows = {row["name"]: row for row in describe_plugins()}
    cleaners = rows["panel2patch.plugins.cleaners"]
    assert cleaners["distribution"] == "panel2patch"
    assert cleaners["hooks"] == ["register_box_cleaners"]
    assert {"kind": "box_cleaners", "name": "box_nms", "target": "panel2patch.plugins.cleaners:NonMaxSuppression"} \
        in cleaners["components"]
