"""Command-line tools beside the parsers: ``parse``, ``score`` and ``split-caption``."""
