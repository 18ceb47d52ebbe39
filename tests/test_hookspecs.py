"""Meta-tests: every hook spec is documented with its signature and exercised by a test."""

import inspect
import re
from pathlib import Path

from panel2patch import hookspecs, manager

ROOT = Path(__file__).resolve().parents[1]


def hook_specs():
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "panel2patch_spec")
    }


def test_every_kind_has_a_registration_hook():
    specs = hook_specs()
    for kind in manager.KINDS.values():
        assert kind.hook in specs


def test_every_hook_has_a_docstring_contract():
    for name, fn in hook_specs().items():
        assert fn.__doc__ and len(fn.__doc__.strip()) > 20, name


def test_every_hook_is_documented_with_its_signature():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    for name, fn in hook_specs().items():
        params = ", ".join(inspect.signature(fn).parameters)
        assert f"{name}({params})" in docs, f"docs/plugins.md lacks `{name}({params})`"


def test_every_hook_is_exercised_by_a_test():
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py") if p.name != Path(__file__).name)
    sources += "\n".join(p.read_text() for p in (ROOT / "examples").rglob("*.py"))
    for name in hook_specs():
        assert re.search(rf"\b{name}\b", sources), f"no test implements or calls hook {name}"
