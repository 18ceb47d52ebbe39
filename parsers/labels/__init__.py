"""Panel labels: glyphs near panel corners, read with RapidOCR and settled by the label series."""
