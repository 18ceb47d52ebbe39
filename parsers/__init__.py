"""Built-in figure parsers, marker detectors and caption splitters, and their command-line tools."""
