"""Classification tasks on disk (both layouts, the offline modality task), their metrics, and the zero-shot and
linear-probe evaluators: on fixed fake embeddings with known answers and end to end with a tiny open_clip model."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from panel2patch.errors import Panel2PatchError
from panel2patch.plugins.evaluation import classification, probe, tasks
from panel2patch.plugins.evaluation.classification import mean_over_tasks, metric_value, summary_scores, task_scores
from panel2patch.plugins.evaluation.probe import LinearProbe, stratified_split
from panel2patch.plugins.evaluation.tasks import TaskError, build_modality_task, read_task
from panel2patch.plugins.evaluation.zeroshot import ZeroShot

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
TINY = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1}}


def png(colour, size=8, noise=0.0, seed=0) -> bytes:
    arr = np.full((size, size, 3), colour, dtype=np.float64)
    arr += np.random.default_rng(seed).normal(0, noise, arr.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def write_images(folder, images: dict[str, list[bytes]]):
    for cls, datas in images.items():
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(datas):
            (folder / cls / f"{i:02d}.png").write_bytes(data)


def write_tar(path, samples: list[dict[str, bytes]]):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for sample in samples:
            for ext, data in sample.items():
                if ext != "__key__":
                    info = tarfile.TarInfo(f"{sample['__key__']}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


def colour_task(root, split_colours: dict[str, dict[str, list]], noise=0.0):
    """A folder task: ``{split: {class: [colour, ...]}}`` (split "" for a flat task)."""
    for split, classes in split_colours.items():
        write_images(root / split if split else root,
                     {c: [png(col, noise=noise, seed=i) for i, col in enumerate(cols)] for c, cols in classes.items()})
    return root


class ColourModel:
    """Image embedding: the mean colour; text embedding: which of red/green/blue the prompt names (normalised)."""

    label = "colours"

    def __init__(self):
        self.prompts: list[str] = []

    @staticmethod
    def _norm(x):
        x = np.asarray(x, dtype=np.float32).reshape(-1, 3)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def encode_images(self, images, total=None):
        return self._norm([np.asarray(im, dtype=np.float64).reshape(-1, 3).mean(0) for im in images])

    def encode_texts(self, texts):
        self.prompts.extend(texts)
        return self._norm([[("red" in t), ("green" in t), ("blue" in t)] for t in texts])


@pytest.fixture(scope="module")
def tiny_model():
    import torch

    from panel2patch.plugins.evaluation.models import ModelSpec, load_model

    spec = ModelSpec("tiny", "open_clip", {"model": "p2p-tiny-eval-test", "pretrained": None, "config": TINY})
    return load_model(spec, torch.device("cpu"), batch_size=16, progress=False)


@pytest.fixture(scope="module")
def modality_folder(tmp_path_factory):
    return build_modality_task(tmp_path_factory.mktemp("modality") / "task", n_per_class=4, size=64, progress=False)


# ---------------------------------------------------------------- reading tasks


def test_folder_layouts(tmp_path):
    flat = colour_task(tmp_path / "flat", {"": {"light_red": [RED, RED], "green": [GREEN]}})
    (flat / "green" / "notes.txt").write_text("not an image")
    (flat / "green" / ".hidden.png").write_bytes(b"")
    (flat / "zeroshot_classification_templates.txt").write_text("a photo of {c}.\n\n{c} colour\n")
    task = read_task(flat)
    assert (task.name, task.layout, task.classes) == ("flat", "folder", ["green", "light red"])
    assert task.templates == ["a photo of {c}.", "{c} colour"]
    assert [(e.id, e.label) for e in task.split("test")] == [
        ("green/00.png", 0), ("light_red/00.png", 1), ("light_red/01.png", 1)]
    assert task.split("test")[1].image().getpixel((0, 0)) == RED

    split = colour_task(tmp_path / "split", {"train": {"a": [RED], "b": [GREEN, GREEN]}, "test": {"b": [BLUE]}})
    task = read_task(split, name="colours")
    assert task.name == "colours" and task.templates is None and sorted(task.splits) == ["test", "train"]
    assert [(e.id, e.label) for e in task.split("test")] == [("test/b/00.png", 1)]
    assert len(task.split("train")) == 3
    with pytest.raises(TaskError, match="no split 'val'; its splits: "):
        task.split("val")


def test_wds_layout(tmp_path):
    root = tmp_path / "wds"
    write_tar(root / "test" / "0.tar", [{"__key__": "s0", "png": png(RED), "cls": b"1"},
                                        {"__key__": "s1", "jpg": png(GREEN), "cls": b"0\n"},
                                        {"__key__": "s2", "cls": b"0"}])
    write_tar(root / "test" / "1.tar", [{"__key__": "s3", "webp": png(BLUE), "cls": b"7"},
                                        {"__key__": "dir/s4", "png": png(BLUE), "cls": b"0"}])
    (root / "test" / "nshards.txt").write_text("2\n")
    (root / "classnames.txt").write_text("green_ish\nred\n\n")
    task = read_task(root)
    assert (task.layout, task.classes, task.templates) == ("wds", ["green_ish", "red"], None)
    assert [(e.id, e.label) for e in task.split("test")] == [
        ("test/0.tar/s0", 1), ("test/0.tar/s1", 0), ("test/1.tar/dir/s4", 0)]
    assert task.skipped["test"] == ["test/0.tar/s2: no image member",
                                    "test/1.tar/s3: class index '7' is not in 0..1"]
    assert task.split("test")[0].image().getpixel((3, 3)) == RED
    assert task.split("test")[2].image().getpixel((3, 3)) == BLUE


def corrupt_layouts(tmp):
    """Each case: a task folder whose reading must fail, with the message it must give."""
    good = [{"__key__": "s0", "png": png(RED), "cls": b"0"}, {"__key__": "s1", "png": png(RED), "cls": b"0"}]
    cases = {"missing": (tmp / "nowhere", "does not exist")}

    def case(name, match, files=(), colours=None):
        root = tmp / name
        colour_task(root, colours or {})
        for rel, data in files:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data) if isinstance(data, bytes) else write_tar(root / rel, data)
        cases[name] = (root, match)

    case("empty_class", "class folder 'b' holds no images", colours={"test": {"a": [RED]}, "train": {"a": [RED]}})
    (tmp / "empty_class" / "train" / "b").mkdir()
    case("nothing", "holds no class folders", [("readme.txt", b"hi")])
    case("mixed", r"mixes split folders \(train\) with other folders \(a\)", colours={"train": {"a": [RED]},
                                                                                      "a": {"x": [RED]}})
    case("no_classnames", "no classnames.txt", [("test/nshards.txt", b"1"), ("test/0.tar", good)])
    case("blank_class", "line 2 is blank", [("classnames.txt", b"a\n\nb\n"), ("test/nshards.txt", b"1")])
    case("twice", "names a class twice", [("classnames.txt", b"a\na\n"), ("test/nshards.txt", b"1")])
    case("no_split", "no split folder with nshards.txt", [("classnames.txt", b"a\n")])
    case("bad_count", "positive number of shards, not 'two'", [("classnames.txt", b"a\n"),
                                                               ("test/nshards.txt", b"two")])
    case("missing_shard", r"1\.tar is missing", [("classnames.txt", b"a\n"), ("test/nshards.txt", b"2"),
                                                ("test/0.tar", good)])
    case("garbage_tar", "cannot read shard", [("classnames.txt", b"a\n"), ("test/nshards.txt", b"1"),
                                              ("test/0.tar", b"this is no tar file" * 100)])
    case("retrieval", "only classification", [("classnames.txt", b"a\n"), ("dataset_type.txt", b"retrieval\n"),
                                              ("test/nshards.txt", b"1")])
    case("template", r"line 2 has no \{c\} placeholder", [("zeroshot_classification_templates.txt", b"{c}\nplain\n")],
         colours={"": {"a": [RED]}})
    case("truncated", "damaged or truncated", [("classnames.txt", b"a\n"), ("test/nshards.txt", b"1"),
                                               ("test/0.tar", good)])
    tar = tmp / "truncated" / "test" / "0.tar"
    tar.write_bytes(tar.read_bytes()[:2048])  # cut inside the second sample
    return cases


CORRUPT = ("missing", "empty_class", "nothing", "mixed", "no_classnames", "blank_class", "twice", "no_split",
           "bad_count", "missing_shard", "garbage_tar", "retrieval", "template", "truncated")


@pytest.mark.parametrize("case", CORRUPT)
def test_unreadable_tasks_say_why(tmp_path, case):
    cases = corrupt_layouts(tmp_path)
    assert set(cases) == set(CORRUPT)
    root, match = cases[case]
    with pytest.raises(TaskError, match=match):
        read_task(root)


# ---------------------------------------------------------------- the modality task


def test_modality_task_both_layouts(tmp_path):
    folder = build_modality_task(tmp_path / "f", n_per_class=2, size=32, seed=3, progress=False)
    wds = build_modality_task(tmp_path / "w", n_per_class=2, size=32, seed=3, fmt="wds", progress=False)
    again = build_modality_task(tmp_path / "again", n_per_class=2, size=32, seed=3, progress=False)
    other = build_modality_task(tmp_path / "other", n_per_class=2, size=32, seed=4, progress=False)
    a, b, c, d = (read_task(p) for p in (folder, wds, again, other))
    assert (a.layout, b.layout) == ("folder", "wds")
    assert a.classes == b.classes and a.templates == b.templates == list(tasks.MODALITY_TEMPLATES)
    assert {"histology", "phase-contrast microscopy", "fundus photograph", "CT", "MRI", "ultrasound"} >= set(a.classes)
    assert {"histology", "fundus photograph", "CT", "MRI"} <= set(a.classes)  # scikit-image and pydicom ship these

    def pixels(task, split):
        return [(e.label, np.asarray(e.image()).tobytes()) for e in task.split(split)]

    for split in ("train", "test"):
        assert len(a.split(split)) == 2 * len(a.classes)
        assert pixels(a, split) == pixels(b, split) == pixels(c, split)  # same seed: same images in both layouts
        assert pixels(a, split) != pixels(d, split)
    assert not {p for _, p in pixels(a, "train")} & {p for _, p in pixels(a, "test")}
    assert [e.label for e in a.split("test")] == sorted(i for i in range(len(a.classes)) for _ in range(2))
    info = json.loads((wds / "task.json").read_text())
    assert info["classes"] == a.classes and info["seed"] == 3 and info["layout"] == "wds"
    assert info["counts"]["test"] == dict.fromkeys(a.classes, 2)
    assert all(s["license"] and s["name"] != "phantom" for sources in info["sources"].values() for s in sources)
    with pytest.raises(TaskError, match="not an empty folder"):
        build_modality_task(folder, n_per_class=1, size=32, progress=False)
    with pytest.raises(TaskError, match="use 'folder' or 'wds'"):
        build_modality_task(tmp_path / "x", fmt="zip", progress=False)


# ---------------------------------------------------------------- metrics on known rows

# labels and class probabilities; predictions 0, 1, 1, 1, 2, 0
ROWS = np.array([[0, .7, .2, .1], [0, .3, .6, .1], [1, .1, .8, .1], [1, .2, .5, .3], [2, .1, .1, .8], [2, .5, .2, .3]])


def test_metrics_hand_computed():
    expected = {"top1": 4 / 6, "balanced_accuracy": (1 / 2 + 1 + 1 / 2) / 3,
                "macro_f1": (0.5 + 0.8 + 2 / 3) / 3,  # per class P/R: 1/2,1/2; 2/3,1; 1,1/2
                "auroc": (7 / 8 + 7 / 8 + 7.5 / 8) / 3}  # pairs ranked right per class, a tie counting half
    ids = tuple(f"t/{i}" for i in range(6))
    scores = task_scores("zs", "t", ROWS, ids, ["t/bad.png: undecodable"])
    assert set(scores) == {"zs/t/top1", "zs/t/balanced_accuracy", "zs/t/macro_f1", "zs/t/auroc", "zs/t/n",
                           "zs/t/skipped"}
    for metric, value in expected.items():
        score = scores[f"zs/t/{metric}"]
        assert score.value == pytest.approx(value) and score.statistic(score.rows) == score.value
        assert score.ids == ids
    assert expected["auroc"] == pytest.approx(roc_auc_score(ROWS[:, 0], ROWS[:, 1:], multi_class="ovr"))
    assert (scores["zs/t/n"].value, scores["zs/t/n"].rows) == (6, None)
    assert scores["zs/t/skipped"].value == 1 and scores["zs/t/skipped"].ids == ("t/bad.png: undecodable",)

    no_class_2 = ROWS[[0, 1, 2, 3, 3]]
    assert metric_value("top1", no_class_2) == pytest.approx(4 / 5)
    assert metric_value("balanced_accuracy", no_class_2) == pytest.approx(0.75)
    assert metric_value("auroc", no_class_2) == pytest.approx((6 / 6 + 4 / 6) / 2)  # class 2 left out
    one_class = ROWS[[0, 1]]
    assert np.isnan(metric_value("auroc", one_class)) and metric_value("top1", one_class) == 0.5
    assert np.isnan(metric_value("top1", ROWS[:0]))


def test_top5_and_task_means():
    rng = np.random.default_rng(0)
    seven = np.column_stack([np.arange(14) % 7, rng.random((14, 7))])
    seven[0, 1:] = [0, 1, 2, 3, 4, 5, 6]  # label 0 scores lowest: outside the top 5
    seven[1, 1:] = [6, 5, 4, 3, 2, 1, 0]  # label 1 second
    assert "zs/a/top5" in task_scores("zs", "a", seven, ()) and "zs/b/top5" not in task_scores("zs", "b", ROWS, ())
    assert metric_value("top5", seven[:1]) == 0.0 and metric_value("top5", seven[1:2]) == 1.0

    summary = summary_scores("zs", [(ROWS, ("b",) * 6), (seven, ("a",) * 14)])
    assert set(summary) == {f"zs/mean/{m}" for m in classification.METRICS}
    for metric in ("top1", "macro_f1", "auroc"):
        score = summary[f"zs/mean/{metric}"]
        assert score.value == pytest.approx((metric_value(metric, ROWS) + metric_value(metric, seven)) / 2)
        assert score.statistic(score.rows) == score.value and len(score.ids) == len(score.rows) == 20
    assert summary["zs/mean/top5"].value == metric_value("top5", seven)  # the one task that reports it
    only_first = summary["zs/mean/top1"].rows[:6]  # a resample holding one task
    assert summary["zs/mean/top1"].statistic(only_first) == pytest.approx(4 / 6)
    assert np.isnan(mean_over_tasks("top5", (3, 7), only_first))


# ---------------------------------------------------------------- evaluators on fake embeddings


def test_zero_shot_known_answers(tmp_path):
    # one blue-labelled image is reddish (predicted red); green images carry some blue, which ranks that image's
    # blue score below theirs: blue AUROC 6/8
    root = colour_task(tmp_path / "colours", {"": {"red": [RED, RED], "green": [(0, 255, 60)] * 2,
                                                   "blue": [BLUE, (255, 30, 0)]}})
    (root / "blue" / "02.png").write_bytes(b"\x89PNG broken")
    model = ColourModel()
    scores = ZeroShot([{"path": str(root)}], templates=["a {c} square"]).evaluate(model, None)
    assert scores["zero_shot/colours/top1"].value == pytest.approx(5 / 6)
    assert scores["zero_shot/colours/balanced_accuracy"].value == pytest.approx(5 / 6)
    assert scores["zero_shot/colours/macro_f1"].value == pytest.approx((0.8 + 1 + 2 / 3) / 3)
    assert scores["zero_shot/colours/auroc"].value == pytest.approx((1 + 1 + 6 / 8) / 3)
    assert scores["zero_shot/colours/n"].value == 6
    (skipped,) = scores["zero_shot/colours/skipped"].ids
    assert skipped.startswith("colours/blue/02.png: undecodable_image: ")
    assert scores["zero_shot/mean/top1"].value == scores["zero_shot/colours/top1"].value
    assert scores["zero_shot/colours/top1"].ids[0] == "colours/blue/00.png"
    assert set(model.prompts) == {"a blue square", "a green square", "a red square"}

    # the entry's templates win over the evaluator's; the task file's over the evaluator's
    model = ColourModel()
    ZeroShot([{"path": str(root), "name": "x", "templates": ["{c}!"]}], templates=["a {c} square"]).evaluate(model, 0)
    assert set(model.prompts) == {"blue!", "green!", "red!"}
    (root / "zeroshot_classification_templates.txt").write_text("the colour {c}\n")
    model = ColourModel()
    ZeroShot([{"path": str(root)}], templates=["a {c} square"]).evaluate(model, None)
    assert "the colour red" in model.prompts and "a red square" not in model.prompts


def test_no_readable_image_is_an_error(tmp_path):
    root = tmp_path / "bad"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        (root / cls / "x.png").write_bytes(b"not a png")
    with pytest.raises(Panel2PatchError, match=r"no readable image \(2 skipped\); first problem: bad/a/x.png: undec"):
        ZeroShot([{"path": str(root)}]).evaluate(ColourModel(), None)


def test_linear_probe_learns_separable_features(tmp_path):
    colours = {"red": RED, "green": GREEN, "blue": BLUE}
    split = colour_task(tmp_path / "split", {"train": {c: [v] * 6 for c, v in colours.items()},
                                             "test": {c: [v] * 3 for c, v in colours.items()}}, noise=20)
    flat = colour_task(tmp_path / "flat", {"": {c: [v] * 6 for c, v in colours.items()}}, noise=20)
    scores = LinearProbe([{"path": str(split)}, {"path": str(flat)}]).evaluate(ColourModel(), None)
    for name, n, n_train in (("split", 9, 18), ("flat", 9, 9)):
        for metric in ("top1", "balanced_accuracy", "macro_f1", "auroc"):
            assert scores[f"linear_probe/{name}/{metric}"].value == 1.0
        assert scores[f"linear_probe/{name}/n"].value == n and scores[f"linear_probe/{name}/n_train"].value == n_train
        assert scores[f"linear_probe/{name}/C"].value in probe.DEFAULT_C
    assert scores["linear_probe/mean/top1"].value == 1.0
    assert {i.split("/")[1] for i in scores["linear_probe/split/top1"].ids} == {"test"}

    fixed = LinearProbe([{"path": str(split)}], C=0.5).evaluate(ColourModel(), None)
    assert fixed["linear_probe/split/C"].value == 0.5


def test_stratified_split():
    labels = np.array([0] * 10 + [1] * 4 + [2])
    rest, held = stratified_split(labels, 0.3, seed=1)
    assert sorted(np.concatenate([rest, held])) == list(range(15))
    assert [int((labels[held] == c).sum()) for c in range(3)] == [3, 1, 0]
    assert (held == stratified_split(labels, 0.3, seed=1)[1]).all()
    assert (held != stratified_split(labels, 0.3, seed=2)[1]).any()


def test_recipe_arguments_checked():
    for bad, match in (([], "non-empty list"), ([{"name": "x"}], "'path'"), ([{"path": "a", "size": 3}], "unknown"),
                       ([{"path": "a/mean"}], "not 'mean'"), ([{"path": "a"}, {"path": "b/a"}], "unique")):
        with pytest.raises(ValueError, match=match):
            ZeroShot(bad)
    with pytest.raises(ValueError, match=r"\{c\} placeholder"):
        ZeroShot([{"path": "a", "templates": ["no placeholder"]}])
    with pytest.raises(ValueError, match="C must be"):
        LinearProbe([{"path": "a"}], C=[])
    with pytest.raises(ValueError, match="holdout"):
        LinearProbe([{"path": "a"}], holdout=1.0)
    with pytest.raises(ValueError, match="unknown"):
        LinearProbe([{"path": "a", "templates": ["{c}"]}])


def test_registered_names():
    from panel2patch.manager import registry

    evaluators = registry("evaluators")
    assert evaluators.get("zero_shot").factory is ZeroShot and evaluators.get("linear_probe").factory is LinearProbe
    assert evaluators.get("zero_shot").owner == "panel2patch.plugins.evaluation.plugin"
    assert not ZeroShot.needs_corpus and not LinearProbe.needs_corpus


# ---------------------------------------------------------------- end to end with a tiny open_clip model


def test_evaluators_with_tiny_open_clip(tiny_model, modality_folder):
    n_classes = len(read_task(modality_folder).classes)
    entry = {"name": "modality", "path": str(modality_folder)}
    for evaluator, prefix in ((ZeroShot([entry]), "zero_shot"), (LinearProbe([entry], C=[0.1, 10.0]), "linear_probe")):
        scores = evaluator.evaluate(tiny_model, None)
        assert scores[f"{prefix}/modality/n"].value == 4 * n_classes
        assert f"{prefix}/modality/skipped" not in scores
        for metric in ("top1", "balanced_accuracy", "macro_f1", "auroc") + (("top5",) if n_classes > 5 else ()):
            for key in (f"{prefix}/modality/{metric}", f"{prefix}/mean/{metric}"):
                score = scores[key]
                assert 0.0 <= score.value <= 1.0 and score.statistic(score.rows) == score.value
                assert len(score.ids) == len(score.rows) == 4 * n_classes
    assert scores["linear_probe/modality/n_train"].value == 4 * n_classes


def test_metrics_equal_scikit_learns_on_random_rows_with_ties():
    import warnings

    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    rng = np.random.default_rng(0)
    for _ in range(60):
        n, c = int(rng.integers(3, 30)), int(rng.integers(2, 7))
        y, p = rng.integers(0, c, n), np.round(rng.normal(size=(n, c)), 1)  # rounded: tied scores
        rows, pred = np.column_stack([y, p]), p.argmax(1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert metric_value("balanced_accuracy", rows) == pytest.approx(balanced_accuracy_score(y, pred))
        assert metric_value("macro_f1", rows) == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
        aucs = [roc_auc_score(y == k, p[:, k]) for k in np.unique(y) if (y == k).sum() < n]
        expected = np.mean(aucs) if aucs else float("nan")
        assert metric_value("auroc", rows) == pytest.approx(expected, nan_ok=True)
