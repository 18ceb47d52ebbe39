"""Error types. Each says what was wrong, where, and what to do."""


class Panel2PatchError(Exception):
    """Base class of every error raised on purpose by panel2patch."""


class PluginError(Panel2PatchError):
    """A plugin could not be loaded, registered a duplicate, or broke a hook contract."""


class UnknownComponentError(Panel2PatchError, KeyError):
    """A recipe or call named a component that no plugin registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RecipeError(Panel2PatchError):
    """A recipe is malformed, names an unknown component or passes arguments its factory rejects."""


class Reject(Panel2PatchError):
    """One input cannot become a corpus sample: mining writes a reject record with ``reason`` (a short
    machine-readable tag) and ``detail``. Sources hand one over in :attr:`SourceItem.error` instead of raising."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


class ImageError(Reject):
    """An input image cannot be used."""

    reason = "image_error"

    def __init__(self, detail: str) -> None:
        super().__init__(type(self).reason, detail)


class ImageDecodeError(ImageError):
    """The file is not an image PIL can decode (corrupt, truncated, empty or another format)."""

    reason = "undecodable_image"


class ImageTooLargeError(ImageError):
    """The image exceeds the pixel limit (a likely decompression bomb)."""

    reason = "image_too_large"
