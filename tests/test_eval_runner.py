"""The ``eval`` run: its plan, intervals and differences, the report files, and ``panel2patch eval`` end to end with
tiny open_clip models on a tiny corpus (one of them an export whose image projection is zero, so every one of its
ranks is known)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from corpus_factory import TINY_MODEL, tiny_recipe, write_corpus

from panel2patch.cli import main as cli_main
from panel2patch.config import load
from panel2patch.corpus import read_corpus
from panel2patch.data import Score
from panel2patch.manager import build
from panel2patch.plugins.evaluation.report import ModelResult, markdown, write_outputs
from panel2patch.plugins.evaluation.runner import DEFAULT_EVALUATORS, add_intervals, plan
from panel2patch.plugins.training.corpus_scan import is_held_out
from panel2patch.plugins.training.export import export_model

NAME = "p2p-evalrun-tiny"
LEVELS = ("figure", "panel", "region")
HELD_OUT = 0.5


# --------------------------------------------------------------------------------------------- report files


def results() -> list[ModelResult]:
    ids = ("q0", "q1", "q2", "q3")
    ref = ModelResult("base", {"loader": "x"}, {
        "retrieval/panel/images": Score(4.0, None, ()),
        "retrieval/panel/i2t_r1": Score(0.75, np.array([1.0, 0.0, 1.0, 1.0]), ids),
        "retrieval/panel/i2t_r5": Score(1.0, np.ones(4), ids),
    })
    other = ModelResult("new", {"loader": "y"}, {
        "retrieval/panel/images": Score(4.0, None, ()),
        "retrieval/panel/i2t_r1": Score(0.5, np.array([0.0, 0.0, 1.0, 1.0]), ids),
        "retrieval/panel/i2t_r5": Score(1.0, np.ones(4), ids),
        "zero_shot/task/accuracy": Score(0.5, np.array([1.0, 0.0]), ("x0", "x1")),
    })
    out = [other, ref]  # the reference is not the first model
    add_intervals(out, "base", 200, 0.9, 0)
    return out


def test_differences_are_against_the_reference_on_metrics_with_queries():
    other, ref = results()
    assert ref.differences == {}
    assert set(other.differences) == {"retrieval/panel/i2t_r1", "retrieval/panel/i2t_r5"}
    assert other.differences["retrieval/panel/i2t_r1"].value == pytest.approx(0.5 - 0.75)
    same = other.differences["retrieval/panel/i2t_r5"]
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    assert set(other.intervals) == set(other.scores) and set(ref.intervals) == set(ref.scores)
    assert other.intervals["retrieval/panel/images"].n == 0


def test_markdown_has_one_row_per_metric_and_a_difference_column_per_other_model():
    text = markdown(results(), "base", 0.9)
    lines = text.splitlines()
    assert lines[0].startswith("Intervals: 90 %")
    assert lines[2] == "| metric | new | base | new − base |"
    rows = [line for line in lines[4:] if line.startswith("| ")]
    assert [r.split(" | ")[0][2:] for r in rows] == ["retrieval/panel/images", "retrieval/panel/i2t_r1",
                                                      "retrieval/panel/i2t_r5", "zero_shot/task/accuracy"]
    cells = {r.split(" | ")[0][2:]: [c.strip() for c in r.split("|")[2:-1]] for r in rows}
    assert cells["retrieval/panel/images"] == ["4.000", "4.000", ""]  # a count: no interval, no difference
    assert cells["retrieval/panel/i2t_r1"][0].startswith("0.500 [") and cells["retrieval/panel/i2t_r1"][2].startswith(
        "-0.250")
    assert cells["retrieval/panel/i2t_r5"] == ["1.000", "1.000", "0.000"]
    assert cells["zero_shot/task/accuracy"][1:] == ["", ""]  # the reference has no such metric


def test_write_outputs_writes_json_markdown_and_a_png(tmp_path):
    written = write_outputs(tmp_path / "out", results(), "base", 0.9, {"corpus": "c", "split": "held_out"})
    assert set(written) == {"json", "markdown", "plot"}
    report = json.loads(Path(written["json"]).read_text())
    assert (report["reference"], report["corpus"], report["split"]) == ("base", "c", "held_out")
    assert list(report["models"]) == ["new", "base"]
    assert report["models"]["base"]["differences"] == {} and report["models"]["new"]["info"] == {"loader": "y"}
    metric = report["models"]["new"]["metrics"]["retrieval/panel/i2t_r1"]
    assert set(metric) == {"value", "low", "high", "n"} and metric["n"] == 4
    assert Path(written["markdown"]).read_text().count("\n| ") == 1 + 4  # header + one row per metric
    assert Path(written["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_outputs_draws_nothing_when_asked_not_to_or_without_recall(tmp_path):
    written = write_outputs(tmp_path / "a", results(), "base", 0.9, {}, draw=False)
    assert "plot" not in written and not (tmp_path / "a" / "eval.png").exists()
    only_counts = [ModelResult("m", {}, {"retrieval/panel/images": Score(3.0, None, ())})]
    add_intervals(only_counts, "m", 10, 0.9, 0)
    written = write_outputs(tmp_path / "b", only_counts, "m", 0.9, {})
    assert "plot" not in written and not (tmp_path / "b" / "eval.png").exists()


# --------------------------------------------------------------------------------------------- a tiny corpus


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 16-figure corpus, a recipe training ``NAME`` on it, and an export of ``NAME`` whose image projection is
    zero: every image embeds as the zero vector, so every candidate ties and every rank is the worst one."""
    import open_clip

    root = tmp_path_factory.mktemp("tiny")
    corpus = write_corpus(root / "corpus", figures=16, shard_size=8, seed=3)
    (root / "configs").mkdir()
    (root / "configs" / f"{NAME}.json").write_text(json.dumps(TINY_MODEL), encoding="utf-8")
    open_clip.add_model_config(root / "configs" / f"{NAME}.json")
    loader = build("model_loaders", "open_clip", {"model": NAME})
    clip, _, _ = loader.load()
    state = clip.state_dict()
    state["visual.proj"] = torch.zeros_like(state["visual.proj"])
    export_model(clip, state, loader.model_config(), root / "export")
    return {"root": root, "corpus": corpus, "export": root / "export"}


def held_out_samples(corpus, level: str, held_out: float | None = HELD_OUT) -> list:
    lv = build("levels", level, {})
    return [s for r in read_corpus(corpus, members=("json",)) if held_out is None or is_held_out(r.key, held_out)
            for s in lv.samples(r.figure)]


def constant_positions(samples) -> tuple[list[int], list[int]]:
    """1-based positions of every i2t and t2i query of a model whose images all embed the same: each query's
    positives tie with all its negatives, so every negative ranks above them."""
    sets = [s for s in ({t.strip() for t in sample.texts if t.strip()} for sample in samples) if s]
    vocab = set().union(*sets)
    owners = {t: sum(t in s for s in sets) for t in vocab}
    return [len(vocab) - len(s) + 1 for s in sets], [len(sets) - k + 1 for k in owners.values()]


def assert_constant_model(metrics: dict, corpus, held_out: float | None) -> None:
    for level in LEVELS:
        samples = held_out_samples(corpus, level, held_out)
        assert metrics[f"retrieval/{level}/images"]["value"] == len(samples)
        for direction, positions in zip(("i2t", "t2i"), constant_positions(samples)):
            p = np.array(positions, dtype=float)
            key = f"retrieval/{level}/{direction}"
            assert metrics[f"{key}_r1"]["value"] == pytest.approx(np.mean(p <= 1)), key
            assert metrics[f"{key}_r10"]["value"] == pytest.approx(np.mean(p <= 10)), key
            assert metrics[f"{key}_mrr"]["value"] == pytest.approx(np.mean(1 / p)), key
            assert metrics[f"{key}_median_rank"]["value"] == pytest.approx(np.median(p)), key
            assert metrics[f"{key}_r1"]["n"] == len(p)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(argv)
    return code, out.getvalue(), err.getvalue()


def write_recipe(path: Path, tiny, eval_section: dict, train: bool = True) -> Path:
    if train:
        tiny_recipe(path, tiny["corpus"], tiny["root"] / "train-out",
                    model={"name": "open_clip", "args": {"model": NAME, "unlocked_vision_blocks": 2}},
                    data={"held_out": HELD_OUT})
        config = yaml.safe_load(path.read_text())
    else:
        config = {}
    config["eval"] = eval_section
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------- plan


def test_plan_defaults_to_the_trained_export_beside_the_initialisation(tmp_path, tiny):
    recipe = write_recipe(tmp_path / "r.yaml", tiny, {})
    out = tiny["root"] / "train-out"
    assert [s.label for s in plan(load(str(recipe))).specs] == ["init"]  # no export yet
    (out / "export").mkdir(parents=True, exist_ok=True)
    try:
        p = plan(load(str(recipe)))
    finally:
        (out / "export").rmdir()
    assert [s.label for s in p.specs] == ["trained", "init"] and p.reference == "trained"
    assert p.specs[0].checkpoint == str(out / "export") and p.specs[1].checkpoint is None
    assert p.specs[1].loader == "open_clip" and p.specs[1].args == {"model": NAME, "unlocked_vision_blocks": 2}
    assert p.out == out / "eval" and p.corpus == str(tiny["corpus"]) and p.held_out == HELD_OUT
    assert [lv.name for lv in p.levels] == list(LEVELS)
    assert [name for name, _ in p.evaluators] == list(DEFAULT_EVALUATORS)


def test_plan_without_a_training_section_writes_to_out_eval(tmp_path, tiny):
    recipe = write_recipe(tmp_path / "r.yaml", tiny, {"models": {"a": MODEL}, "corpus": str(tiny["corpus"])},
                          train=False)
    assert plan(load(str(recipe))).out == Path("out/eval")


def test_plan_merges_model_args_over_the_training_model(tmp_path, tiny):
    recipe = write_recipe(tmp_path / "r.yaml", tiny, {
        "models": {"floor": {"args": {"pretrained": None}}, "big": {"args": {"model": "other", "config": None}}},
        "reference": "big", "levels": ["panel"], "held_out": 0.3, "out": str(tmp_path / "o")})
    p = plan(load(str(recipe)))
    floor, big = p.specs
    assert floor.args == {"model": NAME, "unlocked_vision_blocks": 2, "pretrained": None}
    assert big.args == {"model": "other", "unlocked_vision_blocks": 2, "config": None}
    assert p.reference == "big" and [lv.name for lv in p.levels] == ["panel"]
    assert p.held_out == 0.3 and p.out == tmp_path / "o"


# --------------------------------------------------------------------------------------------- eval RECIPE


@pytest.fixture(scope="module")
def recipe_run(tiny):
    out = tiny["root"] / "recipe-eval"
    recipe = write_recipe(tiny["root"] / "eval.yaml", tiny, {
        "models": {"init": {}, "zero": {"checkpoint": str(tiny["export"])}},
        "reference": "zero", "bootstrap": 200, "batch_size": 16})
    code, stdout, stderr = run_cli(["eval", str(recipe), f"eval.out={out}"])
    return {"code": code, "stdout": stdout, "stderr": stderr, "out": out}


def test_eval_recipe_scores_both_models_against_the_reference(recipe_run, tiny):
    assert recipe_run["code"] == 0, recipe_run["stderr"]
    out = recipe_run["out"]
    assert {p.name for p in out.iterdir()} >= {"eval.json", "eval.md", "eval.png", "split.json", "run.json"}
    report = json.loads((out / "eval.json").read_text())
    assert report["reference"] == "zero" and list(report["models"]) == ["init", "zero"]
    assert report["split"] == "held_out" and report["corpus"] == str(tiny["corpus"])
    zero, init = report["models"]["zero"], report["models"]["init"]
    assert zero["differences"] == {} and zero["info"]["checkpoint"] == str(tiny["export"])
    assert set(zero["metrics"]) == set(init["metrics"])
    prefixes = ("retrieval/figure/", "retrieval/panel/", "retrieval/region/", "cross/region_text_to_panel/",
                "cross/panel_to_caption/", "cross/region_to_subcaption/", "box_text/crop/", "box_text/roi/")
    assert all(any(k.startswith(p) for k in zero["metrics"]) for p in prefixes)
    counts = {k for k, v in zero["metrics"].items() if v["n"] == 0}
    assert counts == {k for k in zero["metrics"] if k.endswith(("/images", "/texts"))}
    assert set(init["differences"]) == set(init["metrics"]) - counts
    means = [k for k in init["differences"] if k.endswith(("_r1", "_r5", "_r10", "_mrr"))]
    assert len(means) > 20
    for key in means:  # every query of both models: the difference of the means is that of the values
        diff = init["differences"][key]
        assert diff["value"] == pytest.approx(init["metrics"][key]["value"] - zero["metrics"][key]["value"])
        assert diff["low"] <= diff["value"] <= diff["high"]
        for model in (zero, init):
            assert model["metrics"][key]["low"] <= model["metrics"][key]["value"] <= model["metrics"][key]["high"]


def test_eval_recipe_scores_the_zero_projection_export_as_a_constant_model(recipe_run, tiny):
    report = json.loads((recipe_run["out"] / "eval.json").read_text())
    metrics = report["models"]["zero"]["metrics"]
    assert_constant_model(metrics, tiny["corpus"], HELD_OUT)
    zero_width = [k for k, v in metrics.items() if k.endswith("_r1") and v["low"] != v["high"]]
    assert zero_width == []  # every query misses: the interval of a constant is that constant


def test_eval_recipe_records_its_split_and_run(recipe_run, tiny):
    out = recipe_run["out"]
    split = json.loads((out / "split.json").read_text())
    records = list(read_corpus(tiny["corpus"], members=("json",)))
    held = sorted(r.key for r in records if is_held_out(r.key, HELD_OUT))
    assert 0 < len(held) < len(records)
    assert split["groups"] == held and split["figures"] == len(held) and split["held_out"] == HELD_OUT
    assert split["samples"] == {level: len(held_out_samples(tiny["corpus"], level)) for level in LEVELS}
    run = json.loads((out / "run.json").read_text())
    assert run["evaluators"] == list(DEFAULT_EVALUATORS) and run["settings"]["bootstrap"] == 200
    assert run["settings"]["reference"] == "zero" and run["config"]["eval"]["out"] == str(out)
    assert {"torch", "open_clip_torch", "scipy"} <= set(run["versions"])


def test_eval_recipe_prints_the_table_and_what_it_wrote(recipe_run):
    assert "| metric | init | zero | init − zero |" in recipe_run["stdout"]
    assert f"wrote json {recipe_run['out'] / 'eval.json'}" in recipe_run["stderr"]
    assert "Traceback" not in recipe_run["stderr"]


# --------------------------------------------------------------------------------------------- eval --model


def test_eval_model_with_a_weights_file_and_its_random_floor(tiny):
    out = tiny["root"] / "model-eval"
    weights = tiny["export"] / "open_clip_model.safetensors"
    code, stdout, stderr = run_cli(["eval", "--model", NAME, "--pretrained", str(weights), "--random-floor",
                                    str(tiny["corpus"]), f"eval.out={out}", "eval.bootstrap=50", "eval.plot=false",
                                    "eval.evaluators=[retrieval]"])
    assert code == 0, stderr
    report = json.loads((out / "eval.json").read_text())
    assert list(report["models"]) == ["open_clip_model", "random_init"] and report["reference"] == "open_clip_model"
    assert report["split"] == "all" and not (out / "eval.png").exists()
    trained, floor = report["models"]["open_clip_model"], report["models"]["random_init"]
    assert trained["info"]["weights"] == str(weights) and trained["info"]["args"]["model"] == NAME
    assert floor["info"]["weights"] is None and floor["info"]["args"] == {"model": NAME, "pretrained": None}
    assert_constant_model(trained["metrics"], tiny["corpus"], None)  # every figure, the weights loaded
    assert floor["differences"] and not trained["differences"]
    assert all(k.startswith("retrieval/") for k in trained["metrics"])
    assert json.loads((out / "split.json").read_text())["figures"] == 16


def test_eval_model_reads_bmc_clips_checkpoint_format(tiny):
    import safetensors.torch

    state = safetensors.torch.load_file(str(tiny["export"] / "open_clip_model.safetensors"))
    bmc = tiny["root"] / "BMC_CLIP_CF.pt"  # BMC-CLIP's release: the state dict under 'state_dict', 'module.' prefixes
    torch.save({"epoch": 10, "state_dict": {f"module.{k}": v for k, v in state.items()}}, bmc)
    out = tiny["root"] / "bmc-eval"
    code, _, stderr = run_cli(["eval", "--model", NAME, "--pretrained", str(bmc), str(tiny["corpus"]),
                               f"eval.out={out}", "eval.bootstrap=0", "eval.plot=false", "eval.evaluators=[retrieval]"])
    assert code == 0, stderr
    report = json.loads((out / "eval.json").read_text())
    assert list(report["models"]) == ["BMC_CLIP_CF"]
    assert_constant_model(report["models"]["BMC_CLIP_CF"]["metrics"], tiny["corpus"], None)


def test_eval_model_with_an_export_folder_loads_it_as_local_dir(tiny):
    out = tiny["root"] / "folder-eval"
    code, _, stderr = run_cli(["eval", "--model", "mine", "--pretrained", str(tiny["export"]), "--held-out",
                               str(HELD_OUT), str(tiny["corpus"]), f"eval.out={out}", "eval.bootstrap=20",
                               "eval.plot=false", "eval.evaluators=[retrieval]"])
    assert code == 0, stderr
    report = json.loads((out / "eval.json").read_text())
    assert list(report["models"]) == ["mine"] and report["split"] == "held_out"
    assert report["models"]["mine"]["info"]["args"] == {"model": f"local-dir:{tiny['export']}", "pretrained": None}
    assert_constant_model(report["models"]["mine"]["metrics"], tiny["corpus"], HELD_OUT)


# --------------------------------------------------------------------------------------------- user errors


def test_random_floor_of_an_export_folder_is_refused(tiny):
    code, _, stderr = run_cli(["eval", "--model", "x", "--pretrained", str(tiny["export"]), "--random-floor",
                               str(tiny["corpus"])])
    assert code == 2 and "--random-floor needs an open_clip model name, not an export folder" in stderr
    assert "Traceback" not in stderr


def test_model_flags_are_refused_without_model_or_with_a_folder_that_is_no_export(tmp_path, tiny):
    code, _, stderr = run_cli(["eval", "--model", "x", "--pretrained", str(tmp_path), str(tiny["corpus"])])
    assert code == 2 and "is a folder without open_clip_config.json" in stderr
    code, _, stderr = run_cli(["eval", "eval", "--random-floor"])
    assert code == 2 and "--pretrained, --random-floor and --held-out go with --model" in stderr


MODEL = {"loader": "open_clip", "args": {"model": NAME}}


@pytest.mark.parametrize("section, train, message", [
    ({"models": {"a": {"weights": "w.pt"}}}, True, "key eval.models.a has unknown keys ['weights']"),
    ({"models": {"a": 3}}, True, "key eval.models.a must be a mapping"),
    ({"models": {"a": {}}, "reference": "ghost"}, True, "key eval.reference names 'ghost'; models are a"),
    ({"models": {}}, True, "key eval.models is empty"),
    ({"models": {"a": MODEL}, "split": "test"}, True, "split must be one of held_out, all"),
    ({"models": {"a": MODEL}}, False, "the evaluators need a corpus: set eval.corpus"),
    ({"models": {"a": {"args": {"model": NAME}}}}, False, "names no loader and the recipe has no train.model"),
    ({"models": {"a": MODEL, "b": {"checkpoint": "/no/such/export"}}}, True,
     "key eval.models.b.checkpoint: '/no/such/export' does not exist"),
    ({"models": {"a": MODEL}, "evaluators": []}, True, "key eval.evaluators is empty"),
])
def test_recipe_errors_exit_2_with_the_key_at_fault(tmp_path, tiny, section, train, message):
    recipe = write_recipe(tmp_path / "r.yaml", tiny, section, train=train)
    code, _, stderr = run_cli(["eval", str(recipe), f"eval.out={tmp_path / 'o'}"])
    assert code == 2 and message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "o").exists()


def test_a_corpus_without_held_out_figures_is_a_clear_error(tmp_path, tiny):
    corpus = write_corpus(tmp_path / "c", figures=3, shard_size=3, seed=1)
    assert not any(is_held_out(r.key, 0.001) for r in read_corpus(corpus, members=("json",)))
    recipe = write_recipe(tmp_path / "r.yaml", tiny, {"models": {"a": MODEL}, "corpus": str(corpus),
                                                      "held_out": 0.001}, train=False)
    code, _, stderr = run_cli(["eval", str(recipe), f"eval.out={tmp_path / 'o'}"])
    assert code == 2 and "has no held_out figures to evaluate (held_out 0.001)" in stderr
    assert "eval.split=all" in stderr and "Traceback" not in stderr
