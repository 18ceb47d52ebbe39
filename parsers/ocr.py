"""The RapidOCR engine shared by the label and marker-text readers (models ship inside its wheel)."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def recognition_engine(threads: int = 0) -> Any:
    """A ``rapidocr_onnxruntime.RapidOCR`` built once per process and thread setting.

    Callers use only its recognition model (``use_det=False``/``text_rec``). ``threads``: onnxruntime
    intra-op threads, 0 for its default.
    """
    from rapidocr_onnxruntime import RapidOCR

    if threads <= 0:
        return RapidOCR()
    return RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)
