"""Full-gallery retrieval agrees with clip_benchmark's ``zeroshot_retrieval.evaluate`` on the same model and pairs."""

from __future__ import annotations

import numpy as np
import pytest
from corpus_factory import TINY_MODEL
from PIL import Image

from panel2patch.plugins.evaluation.models import ModelSpec, load_model
from panel2patch.plugins.evaluation.retrieval import image_text_scores

clip_benchmark = pytest.importorskip("clip_benchmark.metrics.zeroshot_retrieval",
                                     reason="clip-benchmark is the optional 'eval' extra")


def test_recall_at_k_matches_clip_benchmark_in_both_directions():
    import torch
    from torch.utils.data import DataLoader

    model = load_model(ModelSpec("tiny", "open_clip", {"model": "p2p-test-tiny", "config": TINY_MODEL}),
                       torch.device("cpu"), batch_size=5, progress=False)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)) for _ in range(14)]
    words = ["nucleus", "membrane", "vessel", "lesion", "gland", "axon", "tumour"]
    texts = [[f"{words[i % 7]} {i} in panel {chr(65 + i % 5)}", f"region {i} of {words[(3 * i) % 7]}"]
             for i in range(len(images))]
    ks = [1, 5, 10]

    theirs = clip_benchmark.evaluate(
        model.clip, DataLoader(list(zip([model.transform(im) for im in images], texts)), batch_size=4,
                               collate_fn=lambda batch: (torch.stack([b[0] for b in batch]), [b[1] for b in batch])),
        model.tokenizer, "cpu", amp=False, recall_k_list=ks)
    ours = image_text_scores("x", model.encode_images(images), [f"im{i}" for i in range(len(images))], texts, model, ks)

    for k in ks:
        assert ours[f"x/t2i_r{k}"].value == pytest.approx(theirs[f"image_retrieval_recall@{k}"], abs=1e-6)
        # clip_benchmark counts an image as found at K when any of its texts is in the top K, as we do
        assert ours[f"x/i2t_r{k}"].value == pytest.approx(theirs[f"text_retrieval_recall@{k}"], abs=1e-6)
    assert 0.0 < ours["x/t2i_r10"].value < 1.0  # a random model: the comparison is not between two trivial values
