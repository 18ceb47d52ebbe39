"""The caption grammar: every word a demo caption can contain, and the caption pieces built from it."""

from __future__ import annotations

import numpy as np

from .photos import PHOTO_SOURCES
from .plans import PanelPlan, pick

#: Opening sentences shared by every panel.
PREAMBLES = (
    "Histological and imaging features of experimental colitis.",
    "Retinal findings in a model of diabetic microangiopathy.",
    "Morphology of suspended cells under different culture conditions.",
    "Multimodal imaging of tissue remodelling after injury.",
    "Quantitative phase and fundus imaging of the study cohort.",
    "Characterisation of the lesion model used throughout this study.",
    "Representative images and quantification of the main findings.",
)
PREAMBLE_EXTRAS = (
    "Images are representative of three independent experiments.",
    "All samples were processed in parallel.",
)
#: Sentences that may end a caption and belong to every panel.
SHARED_SENTENCES = (
    "Scale bars, 50 µm.",
    "Scale bar, 100 µm.",
    "Data are mean ± s.d.",
    "Data are representative of three independent experiments.",
)
CONDITIONS = (
    "at baseline", "at day 3", "at day 7", "after treatment", "in the control group",
    "in the treated group", "at 4 weeks",
)
CHART_TEXT = {
    "bar": ("Quantification of", ("gland area", "lesion count per field", "vessel density", "signal intensity")),
    "line": ("Time course of", ("cell diameter", "mean signal intensity", "lesion area", "perfusion")),
    "scatter": ("Correlation of", ("gland area with stain intensity", "vessel density with lesion count",
                                   "cell diameter with phase shift")),
}
#: Marker clauses per kind; ``{t}`` is a target phrase of the panel's image, ``{x}`` a marker text,
#: ``{p}`` the label of the panel showing an enlarged area.
CLAUSES = {
    "arrow_one": ("The arrow marks {t}.", "Arrow indicates {t}.", "The arrow points to {t}."),
    "arrow_many": ("Arrows indicate {t}.", "Arrows point to {t}."),
    "arrow_text": ('The arrow labelled "{x}" marks {t}.',),
    "asterisk_one": ("Asterisk marks {t}.", "The asterisk denotes {t}."),
    "asterisk_many": ("Asterisks mark {t}.", "Asterisks denote {t}."),
    "box_solid": ("The box outlines {t}.", "The boxed region highlights {t}."),
    "box_dashed": ("Dashed box shows {t}.", "The dashed box outlines {t}."),
    "box_zoom": ("The boxed area is enlarged in {p}.",),
    "box_inset": ("The box marks the area enlarged in the inset.",),
    "inset": ("Inset shows a higher magnification of the boxed area.", "Inset, magnified view of {t}."),
}
#: Label-token forms per caption style; ``{l}`` one label, ``{a}``/``{b}`` the first/last of a group.
TOKENS = {
    "paren": {"one": ("({l})",), "pair": ("({a}, {b})", "({a} and {b})"), "range": ("({a}–{b})", "({a}-{b})")},
    "comma": {"one": ("{l},",), "pair": ("{a} and {b},",), "range": ("{a}–{b},", "{a}–{b}")},
    "close": {"one": ("{l})",), "pair": ("{a} and {b})",), "range": ("{a}–{b})",)},
}
#: Short texts printed next to arrows and boxes.
MARKER_TEXTS = ("Stent", "Site A", "Site B", "Lesion", "Gland", "Nucleus", "OD")


def label_token(style: str, labels: list[str], numbered: bool, rng: np.random.Generator) -> str:
    """The caption token naming ``labels`` (one label, a pair or a range) in caption style ``style``."""
    forms = TOKENS[style]
    if len(labels) == 1:
        return pick(rng, forms["one"]).format(l=labels[0])
    if len(labels) == 2 or numbered:
        return pick(rng, forms["pair"]).format(a=labels[0], b=labels[-1])
    return pick(rng, forms["range"]).format(a=labels[0], b=labels[-1])


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def group_description(rng: np.random.Generator, plan: list[PanelPlan]) -> str:
    """One sentence describing a group of panels that show the same kind of content."""
    first = plan[0]
    conditions = [CONDITIONS[i] for i in sorted(rng.choice(len(CONDITIONS), size=len(plan), replace=False))]
    if first.kind == "chart":
        verb, subjects = CHART_TEXT[first.chart]
        return f"{verb} {pick(rng, subjects)} {_joined(conditions)}."
    return f"{PHOTO_SOURCES[first.source].subject} {_joined(conditions)}."


def marker_clauses(rng: np.random.Generator, plan: list[PanelPlan], labels: list[str]) -> dict[str, list[str]]:
    """Marker clauses of a caption segment, by marker kind, for the markers drawn in ``plan``."""
    markers = [m for p in plan for m in p.markers]
    out: dict[str, list[str]] = {}
    for p in plan:
        targets = PHOTO_SOURCES[p.source].targets if p.source else ("the region of interest",)
        for m in p.markers:
            m.target = pick(rng, targets)
    arrows = [m for m in markers if m.kind == "arrow"]
    if arrows:
        key = "arrow_one" if len(arrows) == 1 else "arrow_many"
        texts = [pick(rng, CLAUSES[key]).format(t=arrows[0].target)]
        texts += [pick(rng, CLAUSES["arrow_text"]).format(x=m.text, t=m.target) for m in arrows if m.text]
        out["arrow"] = texts
    stars = [m for m in markers if m.kind == "asterisk"]
    if stars:
        key = "asterisk_one" if len(stars) == 1 else "asterisk_many"
        out["asterisk"] = [pick(rng, CLAUSES[key]).format(t=stars[0].target)]
    boxes: list[str] = []
    for role in ("solid", "dashed", "inset", "zoom"):
        for m in [m for m in markers if m.kind == "box" and m.role == role][:1]:
            zoom_label = labels[m.zoom_into] if m.zoom_into is not None else ""
            boxes.append(pick(rng, CLAUSES[f"box_{role}"]).format(t=m.target, p=zoom_label))
    if boxes:
        out["box"] = boxes
    insets = [m for m in markers if m.kind == "inset"]
    if insets:
        out["inset"] = [pick(rng, CLAUSES["inset"]).format(t=insets[0].target)]
    return out


def caption_groups(rng: np.random.Generator, plans: list[PanelPlan], numbered: bool) -> list[list[PanelPlan]]:
    """Consecutive panels that share one caption segment (same content, no cross-panel zoom)."""
    zooming = {m.zoom_into for p in plans for m in p.markers if m.zoom_into is not None}
    zooming |= {p.index for p in plans for m in p.markers if m.zoom_into is not None}
    groups: list[list[PanelPlan]] = []
    i = 0
    while i < len(plans):
        size = 1
        if rng.random() < 0.3:
            size = int(pick(rng, (2, 2, 3)))
        group = [plans[i]]
        while len(group) < size and i + len(group) < len(plans):
            nxt = plans[i + len(group)]
            same = (nxt.kind, nxt.source, nxt.chart) == (plans[i].kind, plans[i].source, plans[i].chart)
            if not same or nxt.index in zooming or plans[i].index in zooming:
                break
            group.append(nxt)
        if numbered and len(group) > 2:
            group = group[:2]
        groups.append(group)
        i += len(group)
    return groups
