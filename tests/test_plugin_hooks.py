"""Every registration hook: a plugin registers a subclass of the kind's base class, a recipe selects it."""

import pytest

from panel2patch import components, manager
from panel2patch.hookspecs import hookimpl


def _subclass(base: type) -> type:
    """A concrete subclass of ``base`` with a typed keyword argument."""
    methods = {name: (lambda self, *a, **k: None) for name in getattr(base, "__abstractmethods__", ())}

    def __init__(self, strength: float = 1.0) -> None:
        self.strength = strength

    return type(f"Custom{base.__name__}", (base,), {**methods, "__init__": __init__})


@pytest.mark.parametrize("kind", sorted(manager.KINDS))
def test_registration_hook_adds_a_selectable_component(kind, add_plugin):
    spec = manager.KINDS[kind]
    cls = _subclass(spec.base)

    class Plugin:
        pass

    def register_hook(register):
        register("custom", cls)

    register_hook.__name__ = spec.hook
    setattr(Plugin, spec.hook, staticmethod(hookimpl(register_hook)))
    add_plugin(Plugin(), "domain-plugin")

    entry = manager.registry(kind).get("custom")
    assert entry.owner == "domain-plugin"
    built = manager.build(kind, "custom", {"strength": 2.5})
    assert isinstance(built, spec.base) and built.strength == 2.5


def test_each_base_class_is_documented():
    for kind in manager.KINDS.values():
        assert kind.base.__doc__, kind.base.__name__
        assert kind.base.__module__ == components.__name__


def test_named_hooks_are_the_registration_hooks():
    """The names this file registers through, spelled out so the hook meta-test can see them."""
    hooks = {k.hook for k in manager.KINDS.values()}
    assert hooks == {
        "register_figure_parsers", "register_marker_detectors", "register_caption_splitters",
        "register_region_miners", "register_box_cleaners", "register_sources", "register_writers",
        "register_model_loaders", "register_levels", "register_aggregators", "register_loss_terms",
        "register_schedules",
    }
