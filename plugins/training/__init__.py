"""Zoom-in hierarchical pretraining on DeepSpeed: level data, the training step, the trainer and its commands."""
