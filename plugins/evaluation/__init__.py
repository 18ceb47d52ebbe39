"""Evaluation: retrieval per level and across levels, box-text retrieval, zero-shot classification and linear probes,
with bootstrap intervals, for any number of models side by side; ablation grids of training recipes."""
