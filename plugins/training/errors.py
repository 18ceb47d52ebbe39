"""The error raised when training cannot start or continue."""

from __future__ import annotations

from panel2patch.errors import Panel2PatchError


class TrainError(Panel2PatchError):
    """Training cannot start or continue (bad settings, no checkpoint to resume, corpus too small)."""
