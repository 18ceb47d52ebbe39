"""Demo compound figures with exact ground truth: the ``demo-data`` command and the ``demo_figures`` source.

Each figure is assembled from real biomedical images bundled inside the scikit-image wheel (nothing is
downloaded; see :data:`~panel2patch.plugins.demo.photos.PHOTO_SOURCES`) and from bar, line and scatter
charts drawn with PIL. Layouts, gutters, backgrounds, panel-label styles and positions, insets, markers
and caption phrasing vary; the same ``(seed, index)`` always gives byte-identical files.

Output of :func:`~panel2patch.plugins.demo.write.write_demo` (``panel2patch demo-data OUT --n N --seed S``)::

    OUT/images/<id>.png          the figure (ids demo-00000, demo-00001, ...)
    OUT/captions.jsonl           {"id", "image" (relative to OUT), "caption"} per line, in id order
    OUT/annotations/<id>.json    the ground truth, :meth:`panel2patch.data.Figure.to_json`
    OUT/demo.json                seed, n, versions, counts and the scikit-image images used (style real:
                                 also style, fonts and the pydicom slices used)

The ``demo_figures`` source yields the same figures without writing files: same ids, same PNG bytes
and same captions as the folder, so mining either gives the same corpus.

Ground-truth conventions (all boxes ``(x0, y0, x1, y1)`` in figure pixels, origin top-left; ``x1``/``y1``
are exclusive pixel edges, so a box is the exact extent of the pixels it covers):

* Panel ``box``: the panel's full extent, i.e. its image area (photo or chart, axes and tick labels
  included) united with its label box when the label is printed outside the image area, in the margin
  strip next to it. Panels never overlap. ``label`` is the bare label as read (``"A"``, ``"b"``, ``"ii"``,
  ``"A1"``; parentheses and circles are decoration, not part of the label); ``label_box`` covers every
  drawn pixel of the label (glyphs, parentheses, circle, background patch). Single-panel figures may be
  unlabelled (``label`` None). ``kind`` is ``"photo"`` or ``"chart"``; ``provenance`` names the content
  (``skimage.data.retina``, ``chart:bar``).
* Marker ``box``: the tight box of the marker's drawn pixels (its text label excluded). Kinds: ``arrow``
  (shaft + filled triangular head; ``tip`` is the head's apex, ``direction`` the pointing direction in
  degrees counter-clockwise from +x with y up), ``asterisk`` (a ``*`` glyph or drawn strokes), ``box``
  (solid or dashed rectangle outline, including the outline marking an inset's source area and the one
  marking an area enlarged in another panel) and ``inset`` (the zoomed crop with its border). ``text`` is
  the short text printed next to the marker ("Stent", "Site A") or None. ``panel_id`` is always set.
* Region ``box``: arrow, a square of side ``clip(0.8 * arrow length, 24, 96)`` centred on the tip;
  box and inset, the interior inside the outline; asterisk, a square three times the asterisk's larger
  side centred on it. Region boxes are clipped to the panel's image area. ``marker_ids`` holds the one
  marker the region comes from; ``texts`` holds every marker clause of the marker's kind in the panel's
  sub-caption.
* Captions follow the grammar in :mod:`panel2patch.plugins.demo.text`. For each panel label ``L``,
  ``subcaption = preamble + " " + segment(L) + " " + shared`` with empty parts dropped, where
  ``preamble`` is the text before the first label token, ``segment(L)`` the text after the label
  token(s) that mention ``L`` up to the next label token (token removed, whitespace stripped; a grouped
  token such as ``(B, C)`` or ``c–e`` gives its segment to every panel it names) and ``shared`` the
  trailing sentences from :data:`~panel2patch.plugins.demo.text.SHARED_SENTENCES` that end the caption.
  ``Panel.preamble`` holds the preamble alone (None when empty). An unlabelled single panel has no label
  token: its preamble is the whole caption before the shared sentences and its sub-caption the whole
  caption.

Style real (``panel2patch demo-data OUT --n N --seed S --style real``; ``write_demo(..., style="real")``;
source args ``{"n": N, "seed": S, "style": "real"}``). The conventions above are the default style's
(``--style default``, what every caller gets without the option). The ``real`` style makes figures that
look like journal figures, so that scores on them say how the parser does on real ones: 2-6 MP pages
(:mod:`~panel2patch.plugins.demo.real_figure`) with the same output layout and annotation format.

* Pictures (:data:`~panel2patch.plugins.demo.real_sources.REAL_SOURCES`): scikit-image's bundled IHC,
  phase-contrast cell, fundus, microaneurysm and phantom images, the IHC's haematoxylin and DAB channels
  as fluorescence-like montages, and pydicom's bundled CT, MR and ultrasound test slices windowed to 8-bit
  grey; cropped, zoomed, flipped and colour-jittered. Only files inside the installed wheels are read
  (scikit-image's downloadable data are never asked for; pydicom's with ``download=False``); a slice that
  cannot be decoded is skipped, and without pydicom the style uses the scikit-image pictures alone.
* Layouts without clean gutters: touching panels, frames around a row, pictures tiled under one letter
  (channels with a merge, time series, conditions) with their own column and row names, condition names
  at a row's left or over shared columns, spanning headers, legends and colour bars; page furniture cut
  with the figure from a PDF page (running head, footer, figure title, strips of body text); half of the
  figures are JPEG-compressed (``jpeg_quality``) before being stored as PNG.
* Panel ``box``: every pixel drawn for the panel (its picture tiles whole, axes, tick and axis labels,
  legends, colour bars, its own column/row names and its label), as measured on the drawing. Texts and
  frames shared by several panels and the page furniture lie outside every panel. Panels never overlap,
  but may touch. ``kind`` is ``photo`` for photos, montages and western blots, ``chart`` for charts, heat
  maps and schematics; ``provenance`` is ``skimage.data.<name>``, ``pydicom.data:<file>``,
  ``drawn:western_blot`` or ``chart:<bar|line|km|box|flow|heatmap|schematic>``.
* Labels: bold or regular sans and serif letters, printed plain, ``(a)``, ``a)``, ``a.`` or circled, white
  on dark or dark on light, on a patch or not, multi-character (``b1``, ``Ai`` printed ``A i`` or ``Ai``,
  ``ii``), above the panel (often above-left of its picture), at its left, or inside the picture at any
  corner. ``label`` is the bare label, ``label_box`` every pixel of it (patch and circle included).
* Markers: ``arrow`` (white with a dark outline or white on grey pictures, thin and coloured on colour
  ones; thin arrows beside blots pointing at a band, ``text`` the band name), ``arrowhead`` (a filled
  triangle without shaft), ``asterisk``, ``box`` (dashed or solid outlines: areas enlarged in another
  panel or beside the picture, inset sources, highlights), ``inset``, ``circle`` (solid or dashed ellipse
  around a cell), ``band_marker`` (a triangle beside a blot pointing left at a band, ``text`` the band
  name) and ``connector`` (a schematic's arrows; ``tip`` and ``direction`` set). Scale bars, chart
  significance stars and brackets, flow-cytometry gates and legend symbols are drawn but not markers.
* Regions as in the default style, for every marker but ``band_marker`` and ``connector`` (which the
  caption does not mention); an arrowhead's region is that of an arrow 2.2 times its length, a blot
  arrow's the band's row across the lanes, a circle's its interior.
* Captions (:mod:`~panel2patch.plugins.demo.real_text`): ``[title] token text ... [shared notes]
  [statistics] [boilerplate]`` with tokens ``(A)``, ``(B, C)``, ``(D–F)``, ``(A1–A3)``, ``a,``, ``b and
  c,``, ``A.``; tokens open a sentence, while back-references inside a segment (``... in (A).``,
  ``in WT (B) and KO (C)``) do not. ``subcaption = title + segment(L) + shared notes`` (scale bars,
  "representative of"), without the trailing statistics and "Source data are available online"
  boilerplate; ``components.generator`` records ``shared_notes`` and ``excluded_notes`` and lists the
  style ``features`` each figure shows (``touching``, ``montage``, ``jpeg``, ``label_print_circled``...).
* Text is drawn with the DejaVu fonts when installed (Debian ``fonts-dejavu-core``), else with Pillow's
  bundled font (``demo.json`` ``fonts`` says which): the same seed gives the same bytes on machines with
  the same fonts and Pillow.
"""

