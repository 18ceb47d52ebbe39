from typing import Literal

import pytest

from panel2patch.errors import PluginError, RecipeError, UnknownComponentError
from panel2patch.registry import Registry, matches


class Thing:
    def __init__(self, size: int = 3, ratio: float = 0.5, mode: Literal["a", "b"] = "a",
                 names: list[str] | None = None, flag: bool = False) -> None:
        self.size, self.ratio, self.mode, self.names, self.flag = size, ratio, mode, names, flag


def make() -> Registry:
    reg = Registry("things", Thing)
    reg.add("thing", Thing, owner="plugin-one")
    return reg


def test_build_passes_args_to_the_factory():
    thing = make().build("thing", {"size": 7, "ratio": 2, "names": ["x"]})
    assert (thing.size, thing.ratio, thing.names) == (7, 2, ["x"])


def test_duplicate_name_names_both_plugins():
    reg = make()
    with pytest.raises(PluginError, match="plugin-one.*plugin-two"):
        reg.add("thing", Thing, owner="plugin-two")


def test_unknown_name_lists_available_names():
    reg = make()
    reg.add("other", Thing, owner="plugin-one")
    with pytest.raises(UnknownComponentError, match="'thng'.*available: other, thing"):
        reg.get("thng")


def test_misspelled_argument_lists_accepted_ones():
    with pytest.raises(RecipeError, match="no argument 'sise'.*size, ratio, mode, names, flag"):
        make().bind("thing", {"sise": 1})


@pytest.mark.parametrize(
    "args, key",
    [({"size": "3"}, "size"), ({"size": 2.5}, "size"), ({"ratio": "x"}, "ratio"), ({"mode": "c"}, "mode"),
     ({"names": "abc"}, "names"), ({"names": [1]}, "names"), ({"flag": 1}, "flag")],
)
def test_wrong_type_names_the_argument(args, key):
    with pytest.raises(RecipeError, match=f"argument '{key}' expects"):
        make().bind("thing", args)


def test_factory_must_build_the_kind_base_class():
    reg = Registry("things", Thing)
    reg.add("bad", lambda: object(), owner="p")
    with pytest.raises(PluginError, match="not a Thing"):
        reg.build("bad")


@pytest.mark.parametrize(
    "value, hint, ok",
    [(1, float, True), (True, int, False), (None, int | None, True), ([1, 2], tuple[int, int], True),
     ([1], tuple[int, int], False), ({"a": 1}, dict[str, int], True), ({"a": "b"}, dict[str, int], False)],
)
def test_matches(value, hint, ok):
    assert matches(value, hint) is ok
