"""Words of the ``real`` style: panel texts (condition names, antibodies, axis titles, running heads) and the
caption grammar (label tokens, marker clauses, trailing notes).

Caption layout: ``[title] token text token text ... [shared notes] [statistics] [boilerplate]``. Label
tokens open a sentence (caption start or after ". "): ``(A)``, ``(B, C)``, ``(D–F)``, ``(A1–A3)``,
``(Ai, Aii)``; Nature style ``a,``, ``b and c,``, ``d–f,``; dotted ``A.``, ``B and C.``, ``D–F.``.
Inside a segment, back-references (``following the protocol in (A)``) never open a sentence.
"""

from __future__ import annotations

import numpy as np

from .plans import pick

TITLES = (
    "Saccharin induces envelope bulging and lysis in Escherichia coli.",
    "Caspase-8 drives cell death downstream of TNF signalling.",
    "Imaging features of the lesion model used throughout this study.",
    "Characterisation of colonic inflammation in FHL2-deficient mice.",
    "Multimodal imaging of tissue remodelling after injury.",
    "Retinal microvascular changes in the diabetic cohort.",
    "Loss of HDAC6 impairs mitotic progression.",
    "Cross-sectional imaging of the study population.",
    "Differentiation of embryoid bodies under pathway inhibition.",
)
REPRESENTATIVE = (
    "Images are representative of three independent experiments.",
    "Representative images of n = 4 mice per group are shown.",
)
SCALE_BARS = ("Scale bars, 50 µm.", "Scale bars, 20 µm.", "Scale bar, 100 µm.", "Scale bars represent 300 µm.",
              "Scale bars: 10 µm (main images) and 2 µm (insets).")
STATISTICS = (
    "Data are mean ± SEM (n = 3 independent biological experiments); *P < 0.05, **P < 0.01, ***P < 0.001, "
    "two-tailed unpaired Student's t-test.",
    "Data are presented as mean ± SD of n = 5 mice per group. P values were calculated by one-way ANOVA with "
    "Tukey's multiple comparison test; ns, not significant.",
    "Bars show mean ± s.d.; dots are individual animals. ****P < 0.0001 (Mann–Whitney U test).",
    "Error bars indicate SEM. Statistical significance was assessed with a log-rank test.",
)
BOILERPLATE = (
    "Source data are available online for this figure.",
    "Source data are available online.",
    "See also Appendix Fig. S1. Source data are available online for this figure.",
    "Source data are provided as a Source Data file.",
)

CONDITIONS = ("Ctrl", "WT", "KO", "Veh", "LPS", "TNF", "DSS", "Sham", "Mock", "siNC", "siPPA2", "DMSO", "Nec-1s",
              "HFD", "NC", "Day 1", "Day 7")
ROW_CONDITIONS = ("WT", "KO", "Ctrl", "Treated", "mock treated", "saccharin 1.4 %", "Vehicle", "DSS", "Day 0",
                  "Day 12", "Pre", "Post", "siNC", "siHDAC6")
TIMEPOINTS = ("0 min", "20 min", "30 min", "45 min", "65 min", "95 min", "110 min", "2 h", "6 h", "24 h")
CHANNEL_SETS = (("DAPI", "FHL2", "Merge"), ("Hoechst", "GFP-HDAC6", "Merged"), ("DAPI", "Ki67", "Merge"),
                ("Nuclei", "CD31", "Overlay"), ("DNA", "α-tubulin", "Merge"))
ANTIBODIES = ("α-FL CASP8", "α-Cl. CASP8", "α-CASP3", "α-GSDMD", "α-Tubulin", "α-GAPDH", "β-Actin", "p-SMAD2",
              "SMAD2/3", "p-SMAD1/5", "HDAC6", "Vinculin", "LC3B", "p62")
BAND_NAMES = ("FL", "p43", "p18", "p17", "p30", "p20", "LC3-II", "*")
GENES = ("NKX2-5", "FOXA2", "SOX17", "GATA4", "HAND1", "TBX5", "WT1", "ISL1", "MESP1", "PDGFRA", "KDR", "TNNT2",
         "MYL7", "HHEX", "CDX2", "T")
BOX_WORDS = (("hESC", "Day 2", "EB", "Sorting", "RNA-seq"), ("Mice", "DSS 3%", "Colon", "Histology"),
             ("Patients", "MRI", "Segmentation", "Follow-up"), ("Cells", "siRNA", "Invasion", "Imaging"),
             ("Screen", "Hits", "Validation"))
Y_TITLES = ("% LDH", "Rel. mRNA level", "Positive cells (%)", "Caspase-3/7 activity", "Area (mm²)",
            "Vessel density (%)", "Rel. invaded cells", "Signal (a.u.)", "Cells per field", "Percent survival (%)")
X_TITLES = ("Time (h)", "Time (min)", "Days", "Dose (µM)", "Overall survival (years)", "Week")
RUNNING_HEADS = ("EMBO reports", "The EMBO Journal", "EMBO Molecular Medicine", "Molecular Systems Biology",
                 "Nature Communications | (2025) 16:4821", "Research Article", "Cell Reports 44, 115201")
AUTHORS = ("Laura M Smith et al", "Chen et al.", "Okafor & Brandt", "J Müller et al", "A. Rossi et al.")
BODY_WORDS = ("the", "cells", "were", "treated", "with", "and", "of", "expression", "in", "response", "to",
              "signalling", "we", "observed", "a", "marked", "increase", "following", "stimulation", "consistent",
              "previous", "reports", "levels", "mice", "significantly", "reduced", "compared", "control", "this",
              "suggests", "that", "pathway", "is", "required", "for", "differentiation", "(Fig.", "2C)", "analysis",
              "revealed", "lineage", "markers", "infection", "death", "independent", "experiments", "at", "day")

#: Marker clauses by kind; ``{t}`` a target phrase, ``{c}`` a colour word, ``{p}`` a panel label.
CLAUSES = {
    "arrow": ("White arrows indicate {t}.", "Arrows point to {t}.", "The arrow marks {t}.", "{C} arrows mark {t}.",
              "Arrows indicate {t}."),
    "arrow_band": ("Arrows mark the full-length and cleaved forms.", "Arrows indicate the specific bands."),
    "arrowhead": ("Arrowheads indicate {t}.", "{C} arrowheads mark {t}.", "Arrowheads point to {t}."),
    "asterisk": ("Asterisks denote {t}.", "The asterisk marks {t}."),
    "circle": ("Circles mark {t}.", "Dashed circles outline {t}.", "The circle highlights {t}."),
    "box_zoom": ("Dashed boxes indicate the areas enlarged in ({p}).", "The boxed area is magnified in ({p})."),
    "box_right": ("The boxed area is shown at higher magnification on the right.",),
    "box_plain": ("The dashed box outlines {t}.", "Boxes highlight {t}."),
    "box_inset": ("Insets show higher magnifications of the boxed areas.",),
}

#: Label-token forms per caption style: one label, a pair, a range (first–last), a list of several.
TOKENS = {
    "paren": {"one": "({l})", "pair": ("({a}, {b})", "({a} and {b})"), "range": ("({a}–{b})", "({a}-{b})")},
    "nature": {"one": "{l},", "pair": ("{a} and {b},",), "range": ("{a}–{b},",)},
    "dot": {"one": "{l}.", "pair": ("{a} and {b}.",), "range": ("{a}–{b}.",)},
}


def label_token(style: str, labels: list[str], rng: np.random.Generator) -> str:
    """The caption token naming ``labels`` (consecutive panels) in ``style``."""
    forms = TOKENS[style]
    if len(labels) == 1:
        return forms["one"].format(l=labels[0])
    if len(labels) == 2:
        return pick(rng, forms["pair"]).format(a=labels[0], b=labels[-1])
    return pick(rng, forms["range"]).format(a=labels[0], b=labels[-1])


def clause(rng: np.random.Generator, key: str, target: str = "", colour: str = "", panel: str = "") -> str:
    text = pick(rng, CLAUSES[key])
    if "{C}" in text and not colour:
        text = text.replace("{C} arrows", "Arrows").replace("{C} arrowheads", "Arrowheads")
    return text.format(t=target, C=colour.capitalize(), p=panel)


def running_text(rng: np.random.Generator, words: int) -> str:
    """Body-text words as cut from an article page."""
    return " ".join(pick(rng, BODY_WORDS) for _ in range(words))
