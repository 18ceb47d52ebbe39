"""Step 4 of the detector: drop shapes repeated as chart data markers and duplicates found in several layers."""

from __future__ import annotations

from panel2patch.parsers.boxes import box_nms

from .found import FoundMarker


def drop_repeats(found: list[FoundMarker], max_repeats: int, photo: bool = False) -> list[FoundMarker]:
    """Drop blobs that occur more than ``max_repeats`` times alike (same kind, layer, size, direction).

    Chart data markers repeat; pointers repeat too (one per band, cell or frame), so arrows with a shaft,
    band markers and connectors are never dropped, nor arrowheads in a photographic panel (``photo``).
    """
    exempt = ("asterisk", "arrow", "band_marker", "connector") + (("arrowhead",) if photo else ())
    keep = []
    for f in found:
        if f.kind in exempt:
            keep.append(f)
            continue
        alike = 0
        for g in found:
            if g.kind != f.kind or g.layer != f.layer or abs(g.size - f.size) > 0.2 * max(f.size, 1.0):
                continue
            if f.direction is not None and g.direction is not None:
                diff = abs(f.direction - g.direction) % 360.0
                if min(diff, 360.0 - diff) > 15.0:
                    continue
            alike += 1
        if alike <= max_repeats:
            keep.append(f)
    return keep


def non_max_suppression(found: list[FoundMarker], iou: float) -> list[FoundMarker]:
    """The markers kept by non-maximum suppression at ``iou``, in their original order."""
    if len(found) <= 1:
        return found
    keep = box_nms([f.box for f in found], [float(f.score) for f in found], iou)
    return [found[k] for k in sorted(keep)]
