"""One test per hook (``test_hook_<name>``): each hook is called and what it registers or observes is used."""

import argparse
import io
import json

import pytest
from corpus_factory import TINY_MODEL
from PIL import Image

from panel2patch import components, config, manager
from panel2patch.cli import main
from panel2patch.corpus import read_corpus, read_rejects
from panel2patch.data import CaptionSplit, FigureParse, Panel
from panel2patch.hookspecs import hookimpl, hookspec
from panel2patch.mining import Miner
from panel2patch.registry import Kind


def _subclass(base: type) -> type:
    """A concrete subclass of ``base`` with a typed keyword argument."""
    methods = {name: (lambda self, *a, **k: None) for name in getattr(base, "__abstractmethods__", ())}

    def __init__(self, strength: float = 1.0) -> None:
        self.strength = strength

    return type(f"Custom{base.__name__}", (base,), {**methods, "__init__": __init__})


def registers_a_selectable_component(kind: str, add_plugin) -> None:
    spec = manager.kinds()[kind]
    cls = _subclass(spec.base)

    def register_hook(register):
        register("custom_component", cls)

    register_hook.__name__ = spec.hook
    plugin = type("Plugin", (), {spec.hook: staticmethod(hookimpl(register_hook))})()
    add_plugin(plugin, "domain-plugin")
    entry = manager.registry(kind).get("custom_component")
    assert entry.owner == "domain-plugin" and entry.target.endswith(f":Custom{spec.base.__name__}")
    section, key = spec.slot.split(".")
    node = {"name": "custom_component", "args": {"strength": 2.5}}
    recipe = config.Recipe("r.yaml", {section: {key: [node] if spec.many else node}})
    built = config.build(recipe, spec.slot)
    built = built[0] if spec.many else built
    assert isinstance(built, spec.base) and built.strength == 2.5


def test_hook_register_figure_parsers(add_plugin):
    registers_a_selectable_component("figure_parsers", add_plugin)


def test_hook_register_marker_detectors(add_plugin):
    registers_a_selectable_component("marker_detectors", add_plugin)


def test_hook_register_caption_splitters(add_plugin):
    registers_a_selectable_component("caption_splitters", add_plugin)


def test_hook_register_region_miners(add_plugin):
    registers_a_selectable_component("region_miners", add_plugin)


def test_hook_register_box_cleaners(add_plugin):
    registers_a_selectable_component("box_cleaners", add_plugin)


def test_hook_register_sources(add_plugin):
    registers_a_selectable_component("sources", add_plugin)


def test_hook_register_writers(add_plugin):
    registers_a_selectable_component("writers", add_plugin)


def test_hook_register_model_loaders(add_plugin):
    registers_a_selectable_component("model_loaders", add_plugin)


def test_hook_register_levels(add_plugin):
    registers_a_selectable_component("levels", add_plugin)


def test_hook_register_aggregators(add_plugin):
    registers_a_selectable_component("aggregators", add_plugin)


def test_hook_register_loss_terms(add_plugin):
    registers_a_selectable_component("loss_terms", add_plugin)


def test_hook_register_schedules(add_plugin):
    registers_a_selectable_component("schedules", add_plugin)


def test_hook_register_evaluators(add_plugin):
    registers_a_selectable_component("evaluators", add_plugin)


def test_a_plugin_evaluator_runs_in_panel2patch_eval(add_plugin, tmp_path, capsys):
    class TextCount(components.Evaluator):
        needs_corpus = False

        def evaluate(self, model, data):
            from panel2patch.data import Score

            return {"custom/text_dim": Score(float(model.encode_texts(["a", "b"]).shape[1]), None, ())}

    class Plugin:
        @hookimpl
        def register_evaluators(self, register):
            register("text_dim", TextCount)

    add_plugin(Plugin(), "eval-plugin")
    recipe = tmp_path / "eval.yaml"
    recipe.write_text(f"""eval:
  models: {{tiny: {{loader: open_clip, args: {{model: p2p-test-tiny, config: {json.dumps(TINY_MODEL)}}}}}}}
  evaluators: [text_dim]
  out: {tmp_path / "out"}
""")
    assert main(["eval", str(recipe)]) == 0
    assert "| custom/text_dim | 32.0 |" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "eval.json").read_text())["models"]["tiny"]["metrics"]["custom/text_dim"][
        "value"] == 32.0


def test_hook_register_commands(add_plugin, capsys):
    class Greet(components.Command):
        help = "say hello"

        def configure(self, parser: argparse.ArgumentParser) -> None:
            parser.add_argument("--name", default="world")

        def run(self, args: argparse.Namespace) -> int:
            print(f"hello {args.name}")
            return 3

    class Plugin:
        @hookimpl
        def register_commands(self, register):
            register("greet", Greet)

    add_plugin(Plugin(), "greeter")
    assert main(["greet", "--name", "figures"]) == 3
    assert capsys.readouterr().out == "hello figures\n"
    assert manager.registry("commands").get("greet").owner == "greeter"


# -- a small mining run whose components come from a test plugin ------------------------------------


class WholeImage(components.FigureParser):
    def parse(self, image, caption):
        if image.getpixel((0, 0)) == (0, 0, 0):
            raise RuntimeError("black figures are not parsed")
        return FigureParse(image.width, image.height, [Panel("p0", (0, 0, image.width, image.height), label="A")])


class WholeCaption(components.CaptionSplitter):
    def split(self, caption, labels):
        return CaptionSplit(caption, segments={"A": caption})


class Tagger(components.FigureStage):
    """The domain kind's base class for the tests: marks panels."""


class WidthTagger(Tagger):
    def __init__(self, prefix: str = "width") -> None:
        self.prefix = prefix

    def process(self, figure, image):
        for panel in figure.panels:
            panel.description = f"{self.prefix} {image.width}"
        return figure


class TaggerSpecs:
    @hookspec
    def register_taggers(self, register):
        """Register taggers."""


class Pipeline:
    def __init__(self, calls: list) -> None:
        self.calls = calls

    @hookimpl
    def register_figure_parsers(self, register):
        register("whole_image", WholeImage)

    @hookimpl
    def register_caption_splitters(self, register):
        register("whole_caption", WholeCaption)

    @hookimpl
    def on_run_start(self, run, is_main):
        self.calls.append(("on_run_start", run.command, is_main))

    @hookimpl
    def on_stage_start(self, run, stage, is_main):
        self.calls.append(("on_stage_start", stage))

    @hookimpl
    def on_step_end(self, run, step, metrics, is_main):
        self.calls.append(("on_step_end", step, metrics["panels"]))

    @hookimpl
    def on_error(self, run, stage, error, is_main):
        self.calls.append(("on_error", stage, "black figures" in str(error)))

    @hookimpl
    def on_stage_end(self, run, stage, summary, is_main):
        self.calls.append(("on_stage_end", stage, summary["figures"]))

    @hookimpl
    def on_run_end(self, run, summary, is_main):
        self.calls.append(("on_run_end", summary["inputs"]))


class TaggerDomain:
    @hookimpl
    def add_hookspecs(self, pluginmanager):
        pluginmanager.add_hookspecs(TaggerSpecs)

    @hookimpl
    def register_kinds(self, register):
        register("taggers", Kind("taggers", "register_taggers", Tagger, "mine.tags", many=True))

    @hookimpl
    def register_taggers(self, register):
        register("width_tagger", WidthTagger)


def _png(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, format="PNG")
    return buf.getvalue()


def mine(tmp_path, add_plugin, extra=None, **mine_keys):
    calls: list = []
    add_plugin(Pipeline(calls), "pipeline")
    if extra is not None:
        add_plugin(extra, "domain")
    (tmp_path / "in").mkdir()
    rows = [("white", (255, 255, 255)), ("black", (0, 0, 0)), ("grey", (128, 128, 128))]
    for name, colour in rows:
        (tmp_path / "in" / f"{name}.png").write_bytes(_png(colour))
    (tmp_path / "in" / "captions.jsonl").write_text(
        "".join(json.dumps({"id": n, "image": f"{n}.png", "caption": f"A {n} square."}) + "\n" for n, _ in rows))
    section = {"source": {"name": "folder_index", "args": {"root": str(tmp_path / "in")}}, "parser": "whole_image",
               "splitter": "whole_caption", "writer": {"name": "webdataset_corpus", "args": {"out": str(tmp_path / "c")}},
               **mine_keys}
    Miner(config.Recipe("r.yaml", {"mine": section})).run_shard(progress=False)
    return calls, {r.figure.id: r.figure for r in read_corpus(tmp_path / "c")}


def test_hook_on_run_start(tmp_path, add_plugin):
    calls, _ = mine(tmp_path, add_plugin)
    assert calls[0] == ("on_run_start", "mine", True)


def test_hook_on_stage_start(tmp_path, add_plugin):
    calls, _ = mine(tmp_path, add_plugin)
    assert calls[1] == ("on_stage_start", "mine")


def test_hook_on_step_end(tmp_path, add_plugin):
    calls, _ = mine(tmp_path, add_plugin)
    assert [c for c in calls if c[0] == "on_step_end"] == [("on_step_end", 1, 1), ("on_step_end", 3, 1)]


def test_hook_on_error(tmp_path, add_plugin):
    calls, figures = mine(tmp_path, add_plugin)
    assert [c for c in calls if c[0] == "on_error"] == [("on_error", "mine", True)]
    assert sorted(figures) == ["grey", "white"]
    assert [r["reason"] for r in read_rejects(tmp_path / "c")] == ["component_error"]


def test_hook_on_stage_end(tmp_path, add_plugin):
    calls, _ = mine(tmp_path, add_plugin)
    assert calls[-2] == ("on_stage_end", "mine", 2)


def test_hook_on_run_end(tmp_path, add_plugin):
    calls, _ = mine(tmp_path, add_plugin)
    assert calls[-1] == ("on_run_end", 3)


def test_hook_add_hookspecs(add_plugin):
    add_plugin(TaggerDomain(), "domain")
    assert manager.plugin_manager().hook.register_taggers.spec is not None
    assert manager.registry("taggers").get("width_tagger").owner == "domain"


def test_hook_register_kinds(tmp_path, add_plugin):
    _, figures = mine(tmp_path, add_plugin, TaggerDomain(),
                      tags=[{"name": "width_tagger", "args": {"prefix": "w="}}])
    assert {f.panels[0].description for f in figures.values()} == {"w= 40"}
    assert manager.kinds()["taggers"].slot == "mine.tags"


def test_a_kind_without_its_hook_spec_is_refused(add_plugin):
    class NoSpec:
        @hookimpl
        def register_kinds(self, register):
            register("taggers", Kind("taggers", "register_taggers", Tagger, "mine.tags"))

    add_plugin(NoSpec(), "nospec")
    with pytest.raises(Exception, match="kind 'taggers' with hook 'register_taggers', which no hook spec declares"):
        manager.kinds()


def test_a_kind_claiming_a_kernel_slot_is_refused(add_plugin):
    class Clash(TaggerDomain):
        @hookimpl
        def register_kinds(self, register):
            register("taggers", Kind("taggers", "register_taggers", Tagger, "mine.parser"))

    add_plugin(Clash(), "clash")
    with pytest.raises(Exception, match="recipe slot 'mine.parser' is claimed by kinds 'figure_parsers' and 'taggers'"):
        manager.kinds()


def test_each_base_class_is_documented():
    kernel = {kind.name for kind in components.KERNEL_KINDS}
    assert kernel < set(manager.kinds()), "built-in plugins add kinds of their own (LVLM backends, mining stages)"
    for kind in manager.kinds().values():
        assert kind.base.__doc__, kind.base.__name__
        if kind.name in kernel:
            assert kind.base.__module__ == components.__name__


def test_hook_register_settings(add_plugin):
    from dataclasses import dataclass

    from panel2patch.errors import RecipeError

    @dataclass
    class ReportSettings:
        figures: int = 50

        def check(self) -> None:
            if self.figures < 1:
                raise ValueError(f"figures must be >= 1, got {self.figures}")

    class Plugin:
        @hookimpl
        def register_settings(self, register):
            register("report", ReportSettings)

    add_plugin(Plugin(), "reporting")
    assert manager.settings_schemas()["report"] is ReportSettings
    config.validate(config.Recipe("r.yaml", {"report": {"figures": 3}}))
    with pytest.raises(RecipeError, match="r.yaml: key report.figures must be >= 1, got 0"):
        config.validate(config.Recipe("r.yaml", {"report": {"figures": 0}}))
    with pytest.raises(RecipeError, match="key report.figure: Key 'figure' not in 'ReportSettings'"):
        config.validate(config.Recipe("r.yaml", {"report": {"figure": 3}}))
