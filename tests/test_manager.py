"""The plugin manager: built-ins as ordinary plugins, blocking, autoload switch, tracing, laziness."""

import subprocess
import sys

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


def test_importing_the_package_loads_no_plugin_and_no_heavy_library():
    code = (
        "import panel2patch, panel2patch.cli, panel2patch.config, panel2patch.manager as m;"
        "panel2patch.cli.build_parser(); print(m._pm is None)"
    )
    assert _run_then_list_heavy(code) == ["True", ""]


def test_collecting_every_registry_imports_no_heavy_library():
    code = "from panel2patch import manager; [manager.registry(k) for k in manager.KINDS]"
    assert _run_then_list_heavy(code) == [""]


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
            register("clip", KeepAll)

    add_plugin(Clash(), "clash")
    with pytest.raises(PluginError, match="'clip' is registered twice.*panel2patch.plugins.cleaners.*clash"):
        manager.registry("box_cleaners")


def test_blocked_builtin_is_not_registered(monkeypatch):
    monkeypatch.setenv(manager.ENV_BLOCK, "panel2patch.plugins.cleaners, other")
    manager.reset()
    assert manager.plugin_manager().get_plugin("panel2patch.plugins.cleaners") is None
    assert manager.registry("box_cleaners").names() == []


def test_unknown_hook_implementation_fails_check_pending(monkeypatch):
    class Typo:
        @hookimpl
        def register_box_cleanerz(self, register):
            pass

    pm = manager.plugin_manager()
    pm.register(Typo(), name="typo")
    with pytest.raises(Exception, match="register_box_cleanerz"):
        pm.check_pending()


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
    rows = {row["name"]: row for row in manager.describe_plugins()}
    cleaners = rows["panel2patch.plugins.cleaners"]
    assert cleaners["distribution"] == "panel2patch"
    assert cleaners["hooks"] == ["register_box_cleaners"]
    assert "nms" in cleaners["components"]["box_cleaners"]
