"""The RapidOCR engine shared by the label and marker-text readers (models ship inside its wheel; the
recognition model runs as a faster, equivalent rewrite, :mod:`.ocr_model`)."""

from __future__ import annotations

import functools
import os
import tempfile
from typing import Any

#: Line height, in pixels, of RapidOCR's recognition model input (PP-OCRv4 rec: 3 x 48 x W).
REC_HEIGHT = 48


@functools.cache
def recognition_engine(threads: int = 0) -> Any:
    """A ``rapidocr_onnxruntime.RapidOCR`` built once per process and thread setting.

    Callers use only its recognition model (``use_det=False``/``text_rec``). ``threads``: onnxruntime
    intra-op threads; 0 for the process's thread budget (``OMP_NUM_THREADS``, which mining workers set; onnxruntime
    itself ignores it), else onnxruntime's default.
    """
    from rapidocr_onnxruntime import RapidOCR

    budget = os.environ.get("OMP_NUM_THREADS", "")
    threads = threads if threads > 0 else int(budget) if budget.isdigit() else 0
    # the recogniser pads every line to its configured width (320 pixels by default), which more than
    # doubles the cost of a short line; a line is read at its own width instead
    options: dict[str, Any] = {"rec_img_shape": [3, REC_HEIGHT, REC_HEIGHT]}
    if threads > 0:
        options |= {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
    fast = fast_recogniser()
    if fast is None:
        return RapidOCR(**options)
    # onnxruntime reads the model file once, when the engine is built
    with tempfile.TemporaryDirectory(prefix="panel2patch-ocr-") as folder:
        path = os.path.join(folder, "rec.onnx")
        with open(path, "wb") as f:
            f.write(fast)
        return RapidOCR(rec_model_path=path, **options)


def fast_recogniser() -> bytes | None:
    """RapidOCR's shipped recognition model rewritten to run faster (:mod:`.ocr_model`), or None
    when the rewrite does not apply to it."""
    from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH, read_yaml, update_model_path

    from .ocr_model import fast_copy

    return fast_copy(update_model_path(read_yaml(DEFAULT_CFG_PATH))["Rec"]["model_path"])
