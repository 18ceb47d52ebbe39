"""Demo compound figures with exact ground truth: the ``demo-data`` command and the ``demo_figures`` source.

Each figure is assembled from real biomedical images bundled inside the scikit-image wheel (nothing is
downloaded; see :data:`~panel2patch.plugins.demo.photos.PHOTO_SOURCES`) and from bar, line and scatter
charts drawn with PIL. Layouts, gutters, backgrounds, panel-label styles and positions, insets, markers
and caption phrasing vary; the same ``(seed, index)`` always gives byte-identical files.

Output of :func:`~panel2patch.plugins.demo.write.write_demo` (``panel2patch demo-data OUT --n N --seed S``)::

    OUT/images/<id>.png          the figure (ids demo-00000, demo-00001, ...)
    OUT/captions.jsonl           {"id", "image" (relative to OUT), "caption"} per line, in id order
    OUT/annotations/<id>.json    the ground truth, :meth:`panel2patch.data.Figure.to_json`
    OUT/demo.json                seed, n, versions, counts and the scikit-image images used

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
"""

