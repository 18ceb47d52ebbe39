"""The marker detector ``shape_markers``: arrows, arrowheads, asterisks, symbols, boxes and insets."""
