"""Time RapidOCR's shipped recognition model against the rewrite the parsers run (``panel2patch.parsers.ocr_model``).

Both models run in this process, with onnxruntime on ``--threads`` intra-op threads, on random 48-pixel-high
strips of the widths the label reader and marker-text reader send (``--widths``); the rounds alternate
between the two models. Prints the median seconds per round of each, their ratio, and the largest logit
difference between them.

Usage::

    python benchmarks/ocr_model.py [--threads 1] [--rounds 7] [--widths 89,127,236,267,728,940,1137,1200]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--widths", default="89,127,236,267,728,940,1137,1200")
    args = ap.parse_args()

    import onnxruntime as ort
    from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH, read_yaml, update_model_path

    from panel2patch.parsers.ocr import fast_recogniser

    shipped = update_model_path(read_yaml(DEFAULT_CFG_PATH))["Rec"]["model_path"]
    fast = fast_recogniser()
    if fast is None:
        raise SystemExit("the rewrite does not apply to this RapidOCR's recognition model")

    def session(model: str | bytes) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    models = {"shipped": session(shipped), "rewrite": session(fast)}
    name = models["shipped"].get_inputs()[0].name
    rng = np.random.default_rng(0)
    strips = [rng.uniform(-1, 1, (1, 3, 48, int(w))).astype(np.float32) for w in args.widths.split(",")]
    diff = max(float(np.abs(models["shipped"].run(None, {name: x})[0] - models["rewrite"].run(None, {name: x})[0]).max())
               for x in strips)
    times: dict[str, list[float]] = {k: [] for k in models}
    for r in range(args.rounds):
        for key in models if r % 2 == 0 else reversed(list(models)):
            start = time.perf_counter()
            for x in strips:
                models[key].run(None, {name: x})
            times[key].append(time.perf_counter() - start)
        print(f"round {r + 1}/{args.rounds}", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  onnxruntime {ort.__version__}  python {platform.python_version()}  "
          f"threads={args.threads}  strips={args.widths}")
    print(f"shipped {med['shipped']:.3f} s/round  rewrite {med['rewrite']:.3f} s/round  "
          f"ratio {med['rewrite'] / med['shipped']:.2f}  max |logit difference| {diff:.1e}")


if __name__ == "__main__":
    main()
