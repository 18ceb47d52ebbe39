"""The RapidOCR engine shared by the label and marker-text readers (models ship inside its wheel)."""

from __future__ import annotations

import functools
import os
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
    shape = [3, REC_HEIGHT, REC_HEIGHT]
    if threads <= 0:
        return RapidOCR(rec_img_shape=shape)
    return RapidOCR(rec_img_shape=shape, intra_op_num_threads=threads, inter_op_num_threads=1)
