"""Errors of the LVLM layer."""

from __future__ import annotations

from panel2patch.errors import Panel2PatchError, Reject


class LVLMError(Panel2PatchError):
    """Base class of the errors raised on purpose by :mod:`panel2patch.parsers.lvlm`."""


class UnresizableImageError(Reject, ValueError):
    """An image (or view) has no Qwen2.5-VL input size: a side is not positive or the aspect ratio exceeds the
    model's limit. A figure parser may let it propagate as a reject of the figure."""

    reason = "lvlm_unresizable"

    def __init__(self, detail: str) -> None:
        super().__init__(type(self).reason, detail)


class BackendError(LVLMError):
    """A backend broke its contract (e.g. returned a different number of answers than requests)."""


class MissingAnswerError(LVLMError, KeyError):
    """A recorded backend has no answer for a request: the recording was made with another model, prompt, image
    view, schema or generation settings."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
