"""Hostile-input survey: every generated hostile input (``tests/hostile/hostile_inputs.py``) run through the command
line one at a time, and each outcome classified.

Classes: ``ok`` (mined, or rejected with the expected reason; a reader skips or stops with a message naming the
member), ``wrong`` (another reason, mined when it must be rejected, a stored image whose size differs from its JSON,
markup written unescaped), ``lost`` (an input or member that vanishes without a word), ``crash`` (a Python
traceback), ``stopped`` (a mining run refused as a whole for one bad input), ``hang`` (no answer within
``--timeout`` seconds) and ``executed`` (code in a recipe ran).

    python benchmarks/hostile_survey.py                       # the installed panel2patch
    python benchmarks/hostile_survey.py --pythonpath DIR --names names.json --out survey.json

``--names`` maps the component names used here to those of another build (``{"cpu_layout": "layout", ...}``), so
that one survey can compare two builds in the same session.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS / "hostile"), str(TESTS)]
from hostile_inputs import (  # noqa: E402
    corpus_members,
    csv_source,
    encoded,
    figure_image,
    figure_json,
    folder_source,
    mine_recipe,
    tar_bytes,
    webdataset_source,
)


class Survey:
    def __init__(self, python: str, pythonpath: str | None, names: dict[str, str], work: Path, timeout: float) -> None:
        self.python, self.names, self.work, self.timeout = python, names, work, timeout
        self.env = dict(os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {}))
        self.outcomes: dict[str, Counter] = {}
        self.runs = 0

    def cli(self, *argv: str) -> tuple[int, str]:
        """Exit code and output of one command; ``(-1, "timeout")`` after ``timeout`` seconds (classed ``hang``)."""
        self.runs += 1
        try:
            done = subprocess.run([self.python, "-m", "panel2patch", *argv], capture_output=True, text=True,
                                  env=self.env, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            return -1, "timeout"
        return done.returncode, done.stdout + done.stderr

    def note(self, section: str, outcome: str) -> None:
        self.outcomes.setdefault(section, Counter())[outcome] += 1

    def recipe(self, source: str, args: str, out: Path) -> Path:
        text = mine_recipe(f"{{name: {source}, args: {args}}}", out)
        for new, old in self.names.items():
            text = text.replace(f"name: {new}", f"name: {old}")
        path = out.with_suffix(".yaml")
        path.write_text(text)
        return path

    def mine(self, section: str, source: str, args: str, expected: list[tuple[str, str | None]], tag: str) -> None:
        """Mine one small input set; classify the outcome of the one hostile input in it (the last of ``expected``)."""
        out = self.work / f"{section}-{tag}"
        code, log = self.cli("mine", str(self.recipe(source, args, out)))
        if code == -1:
            return self.note(section, "hang")
        if "Traceback" in log:
            return self.note(section, "crash")
        if code != 0:
            return self.note(section, "stopped")
        found, sizes_ok = corpus_outcomes(out)
        want = Counter(expected)
        if found == want and sizes_ok:
            return self.note(section, "ok")
        missing = want - found
        self.note(section, "lost" if sum(missing.values()) > sum((found - want).values()) else "wrong")

    def reader(self, section: str, argv: list[str], key: str, problem: str | None, page: Path | None = None) -> None:
        code, log = self.cli(*argv)
        if code == -1:
            return self.note(section, "hang")
        if "Traceback" in log:
            return self.note(section, "crash")
        if page is not None and page.is_file() and "<script>alert(1)" in page.read_text(encoding="utf-8"):
            return self.note(section, "wrong")
        if problem is None:
            return self.note(section, "ok" if code == 0 else "stopped")
        mentioned = key in log or "skipped" in log or "unreadable" in log
        self.note(section, "ok" if mentioned else "lost")


def corpus_outcomes(corpus: Path) -> tuple[Counter, bool]:
    """``(id, reason or None)`` of a corpus's figures and rejects, read with the standard library only; and whether
    every stored image has the size its JSON gives."""
    from PIL import Image

    found, sizes_ok = Counter(), True
    for shard in sorted(corpus.glob("**/*.tar")):
        members: dict[str, dict[str, bytes]] = {}
        with tarfile.open(shard) as tar:
            for m in tar:
                if m.isfile():
                    key, _, ext = m.name.partition(".")
                    members.setdefault(key, {})[ext] = tar.extractfile(m).read()
        for sample in members.values():
            data = json.loads(sample["json"])
            found[(data["id"], None)] += 1
            image = next((v for k, v in sample.items() if k in ("png", "jpg", "jpeg", "tif", "gif", "webp", "bmp")), b"")
            with Image.open(io.BytesIO(image)) as img:
                sizes_ok &= img.size == (data["width"], data["height"])
    for path in sorted(corpus.glob("**/*.rejects.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                found[(r["id"], r["reason"])] += 1
    return found, sizes_ok


def survey_mining(s: Survey, names: dict[str, str]) -> None:
    root = s.work / "figures"
    cases = folder_source(root)
    rows = [line for line in (root / "captions.jsonl").read_bytes().split(b"\n") if line.strip()]
    good_row = rows[0]
    for n, (case, row) in enumerate(zip(cases, rows)):
        index = root / f"case-{n}.jsonl"
        index.write_bytes(row + b"\n" if n == 0 else good_row + b"\n" + row + b"\n")
        expected_id = case.id.replace("captions.jsonl:", f"{index.name}:")
        if case.id.startswith("captions.jsonl:"):
            expected_id = f"{index.name}:2"
        expected = [(expected_id, case.reason)] if n == 0 else [("good_png", None), (expected_id, case.reason)]
        s.mine("mine: folder index (JSONL)", "folder_index", f"{{root: '{root}', index: {index.name}, max_bytes: 2000000}}",
               expected, f"jsonl{n}")
    csv_cases = csv_source(root)
    csv_lines = (root / "captions.csv").read_bytes().split(b"\n")
    header, sentinel = csv_lines[0], b"csv_sentinel,good.png,the row after it"
    for n, case in enumerate(csv_cases):
        if case.id == "csv_after":
            continue  # the sentinel row below plays its part
        line = csv_lines[1 + n] if case.id != "csv_multi" else b'csv_multi,good.png,"a caption\nover two lines"'
        index = root / f"case-{n}.csv"
        index.write_bytes(b"\n".join([header, line, sentinel]) + b"\n")
        expected_id = f"{index.name}:2" if case.id.startswith("captions.csv:") else case.id
        s.mine("mine: folder index (CSV)", "folder_index", f"{{root: '{root}', index: {index.name}}}",
               [(expected_id, case.reason), ("csv_sentinel", None)], f"csv{n}")
    shards = s.work / "shards"
    webdataset_source(shards)
    per_shard = {
        "a-000.tar": [("w1", None), ("w2", "caption_not_utf8"), ("w3", "missing_image"), ("PMC9_f4", None),
                      ("w5", None), ("w6", "undecodable_image")],
        "b-000.tar": [("d1", None), ("b-000.tar#shard", "bad_shard")],
        "c-000.tar": [("d1", None), ("d2", "bad_shard")],
        "d-000.tar": [("d-000.tar#shard", "bad_shard")],
    }
    for name, expected in per_shard.items():
        s.mine("mine: WebDataset shards", "webdataset_source", f"{{urls: '{shards / name}'}}", expected, name)


def survey_readers(s: Survey) -> None:
    png = encoded(figure_image(), "PNG")
    good = [("h01.json", json.dumps(figure_json("h01")).encode()), ("h01.png", png)]
    members = [(key, parts, problem) for key, parts, problem, _ in corpus_members() if key != "h01"]
    damaged = bytearray(tar_bytes([("z1.json", json.dumps(figure_json("z1")).encode()), ("z1.png", png),
                                   ("z2.json", json.dumps(figure_json("z2")).encode()), ("z2.png", png)]))
    with tarfile.open(fileobj=io.BytesIO(bytes(damaged))) as tar:
        z2 = [m.offset for m in tar.getmembers()][2]
    damaged[z2 + 148 : z2 + 156] = b"garbage!"
    cases = [(key, tar_bytes(good + [(f"{key}.{ext}", data) for ext, data in parts.items()]), problem)
             for key, parts, problem in members]
    cases.append(("z2", bytes(damaged), "damaged"))
    for n, (key, shard, problem) in enumerate(cases):
        corpus = s.work / f"corpus-{n}"
        (corpus / "shards").mkdir(parents=True)
        (corpus / "shards" / "corpus-000-00000.tar").write_bytes(shard)
        (corpus / "manifest.json").write_text('{"kind": "panel2patch-corpus"}')
        page = corpus / "report.html"
        report_problem = None if problem == "image" else problem
        s.reader("report", ["report", str(corpus), str(page)], key, report_problem, page)
        s.reader("export-pairs", ["export-pairs", str(corpus), str(s.work / f"pairs-{n}"), "--level", "region"], key,
                 problem)


def survey_recipes(s: Survey, names: dict[str, str]) -> None:
    pwned = s.work / "pwned"
    texts = [
        f'mine:\n  source: !!python/object/apply:os.system ["touch {pwned}"]\n',
        "- mine\n- train\n", "mine: {source: {name: folder_index\n",
        "mine:\n  chunk_size: ${oc.env:PANEL2PATCH_NO_SUCH_VARIABLE}\n", "train: 5\n", "mining:\n  chunk_size: 5\n",
        "mine:\n  source: {name: folder_index}\n  parser: {name: cpu_layout, args: {min_panel_frac: fifty}}\n",
    ]
    overrides = ["mine.chunk_size=-1", "mine.chunk_size=0", "mine.chunk_size=ten", "mine.max_pixels=0",
                 "mine.chunk_sise=4"]
    train_overrides = ["train.data.batch_size=0", "train.optim.lr=nan", "train.optim.lr=-1", "train.optim.max_steps=-3",
                       "train.data.workers=-1", "train.data.held_out=1.5", "train.precision=fp8", "train.levels=5"]
    runs = [["validate", str(s.work / f"recipe-{n}.yaml")] for n in range(len(texts))]
    for n, text in enumerate(texts):
        for new, old in names.items():
            text = text.replace(f"name: {new}", f"name: {old}")
        (s.work / f"recipe-{n}.yaml").write_text(text)
    runs += [["validate", "quickstart", o] for o in overrides] + [["validate", "train_tiny", o] for o in train_overrides]
    for argv in runs:
        code, log = s.cli(*argv)
        outcome = ("executed" if pwned.exists() else "hang" if code == -1 else "crash" if "Traceback" in log
                   else "ok" if code != 0 else "wrong")
        s.note("validate", outcome)
        pwned.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--pythonpath", help="PYTHONPATH for the panel2patch under test")
    parser.add_argument("--names", help="JSON file mapping component names used here to the build's own")
    parser.add_argument("--out", help="write the counts as JSON here")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a command counts as a hang")
    parser.add_argument("--sections", nargs="+", choices=("mine", "readers", "validate"),
                        default=["mine", "readers", "validate"])
    args = parser.parse_args()
    names = json.loads(Path(args.names).read_text()) if args.names else {}
    with tempfile.TemporaryDirectory() as tmp:
        s = Survey(args.python, args.pythonpath, names, Path(tmp), args.timeout)
        steps = {"mine": lambda: survey_mining(s, names), "readers": lambda: survey_readers(s),
                 "validate": lambda: survey_recipes(s, names)}
        for name in args.sections:
            steps[name]()
            print(f"... {s.runs} command runs", file=sys.stderr)
    total = sum(s.outcomes.values(), Counter())
    for section, counts in [*s.outcomes.items(), ("all", total)]:
        print(f"{section:32s} inputs {sum(counts.values()):4d}  " + "  ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if args.out:
        Path(args.out).write_text(json.dumps({k: dict(v) for k, v in [*s.outcomes.items(), ("all", total)]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
