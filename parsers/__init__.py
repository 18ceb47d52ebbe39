"""Built-in figure parsers, marker detectors and caption splitters."""
