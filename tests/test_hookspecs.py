"""Meta-tests: every hook spec is documented with its signature and exercised by a test."""

import inspect
from pathlib import Path

from panel2patch import hookspecs, manager

ROOT = Path(__file__).resolve().parents[1]


def hook_specs():
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "panel2patch_spec")
    }


def test_every_kernel_kind_has_a_registration_hook():
    from panel2patch.components import KERNEL_KINDS

    specs = hook_specs()
    kernel = {kind.name for kind in KERNEL_KINDS}
    for kind in manager.kinds().values():
        if kind.name in kernel:
            assert kind.hook in specs
        else:  # a built-in plugin's kind: its plugin declares the hook spec
            assert getattr(manager.plugin_manager().hook, kind.hook).spec is not None, kind.hook


def test_every_hook_has_a_docstring_contract():
    for name, fn in hook_specs().items():
        assert fn.__doc__ and len(fn.__doc__.strip()) > 20, name


def test_every_hook_is_documented_with_its_signature():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    for name, fn in hook_specs().items():
        params = ", ".join(inspect.signature(fn).parameters)
        assert f"{name}({params})" in docs, f"docs/plugins.md lacks `{name}({params})`"


def test_every_hook_has_a_test_named_after_it():
    """As datasette does: ``tests/test_plugin_hooks.py`` holds ``test_hook_<name>`` for every hook."""
    from tests import test_plugin_hooks

    missing = [name for name in hook_specs() if not callable(getattr(test_plugin_hooks, f"test_hook_{name}", None))]
    assert missing == [], f"hooks without a test_hook_<name> in tests/test_plugin_hooks.py: {missing}"
