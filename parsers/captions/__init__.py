"""The caption splitter ``label_splitter``: cut a figure caption by its panel labels."""
