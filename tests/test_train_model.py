"""The open_clip model loader (freezing, checkpoint formats), the text-embedding cache and the export."""

from __future__ import annotations

import pytest
import torch
from corpus_factory import TINY_MODEL

from panel2patch.manager import build
from panel2patch.plugins.models import ModelLoadError
from panel2patch.plugins.training.export import export_model
from panel2patch.plugins.training.model import parameter_counts, wrap_model
from panel2patch.plugins.training.text_cache import TextEmbeddingCache, text_fingerprint, text_tower_names

NAME = "p2p-test-model-tiny"


def _loader(**args):
    return build("model_loaders", "open_clip", {"model": NAME, "config": TINY_MODEL, **args})


def _expected_trainable(model, blocks: int) -> set[str]:
    layers = len(model.visual.transformer.resblocks)
    names = {"logit_scale", "visual.proj", "visual.ln_post.weight", "visual.ln_post.bias"}
    for name, _ in model.named_parameters():
        for b in range(layers - blocks, layers):
            if name.startswith(f"visual.transformer.resblocks.{b}."):
                names.add(name)
    return names


def test_freezing_policy_trains_the_last_vision_blocks_and_the_projection():
    model, preprocess, tokenizer = _loader(unlocked_vision_blocks=2).load()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == _expected_trainable(model, 2)
    assert not any(p.requires_grad for n, p in model.named_parameters() if not n.startswith("visual.") and n != "logit_scale")
    n_train, n_total = parameter_counts(model)
    assert n_train == sum(p.numel() for n, p in model.named_parameters() if n in trainable)
    assert n_total == sum(p.numel() for p in model.parameters())
    assert preprocess(__import__("PIL.Image", fromlist=["Image"]).new("RGB", (50, 40))).shape == (3, 32, 32)
    assert tokenizer(["a red square"]).shape == (1, TINY_MODEL["text_cfg"]["context_length"])

    whole, _, _ = _loader(unlocked_vision_blocks=-1, lock_text=False, train_logit_scale=False).load()
    assert all(p.requires_grad for n, p in whole.named_parameters() if n != "logit_scale")
    assert not whole.logit_scale.requires_grad


def test_bmc_clip_checkpoint_format_loads_with_the_expected_split(tmp_path):
    source, _, _ = _loader().load()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    # BMC-CLIP's release: a training checkpoint, state dict under 'state_dict' with 'module.' prefixes
    path = tmp_path / "BMC_CLIP_CF.pt"
    torch.save({"epoch": 10, "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    model, _, _ = _loader(pretrained=str(path), unlocked_vision_blocks=1).load()
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert {n for n, p in model.named_parameters() if p.requires_grad} == _expected_trainable(model, 1)


def test_loader_errors_name_the_problem(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        _loader(pretrained=str(tmp_path / "missing.pt")).load()
    with pytest.raises(ModelLoadError, match="hf-hub:ORG/REPO"):
        _loader(pretrained="hf-hub:only-org").load()
    with pytest.raises(ModelLoadError, match="built-in open_clip model"):
        build("model_loaders", "open_clip", {"model": "ViT-B-32", "config": TINY_MODEL}).load()
    with pytest.raises(ModelLoadError, match="lacks"):
        build("model_loaders", "open_clip", {"model": "p2p-broken", "config": {"embed_dim": 8}}).load()


def test_text_cache_encodes_each_text_once_and_persists(tmp_path):
    model, _, tokenizer = _loader().load()
    calls = []

    def encode(texts):
        calls.append(list(texts))
        with torch.no_grad():
            return model.encode_text(tokenizer(texts), normalize=True)

    fingerprint = text_fingerprint(model, tokenizer, text_tower_names(model))
    cache = TextEmbeddingCache(encode, fingerprint, str(tmp_path))
    texts = ["red stripes", "blue dots", "red stripes"]
    first = cache(texts)
    with torch.no_grad():
        direct = model.encode_text(tokenizer(texts), normalize=True)
    assert torch.allclose(first, direct, atol=1e-6)
    assert calls == [["red stripes", "blue dots"]]
    again = cache(["blue dots", "red stripes"])
    assert torch.equal(again, first[[1, 0]]) and len(calls) == 1
    assert cache.stats()["hits"] == 3 and cache.stats()["misses"] == 2
    cache.close()

    reopened = TextEmbeddingCache(encode, fingerprint, str(tmp_path))
    assert torch.equal(reopened(["red stripes"]), first[:1]) and len(calls) == 1
    reopened.close()

    with torch.no_grad():
        model.token_embedding.weight.add_(0.1)
    changed = text_fingerprint(model, tokenizer, text_tower_names(model))
    assert changed != fingerprint
    other = TextEmbeddingCache(encode, changed, str(tmp_path))
    other(["red stripes"])
    assert len(calls) == 2
    other.close()


def test_export_loads_in_stock_open_clip_with_the_same_embeddings(tmp_path):
    import open_clip

    loader = _loader()
    model, preprocess, _ = loader.load()
    wrapper = wrap_model(model).eval()  # reshapes the 0-d logit scale as DeepSpeed needs
    with torch.no_grad():
        model.visual.proj.add_(0.05)
    export_model(model, model.state_dict(), loader.model_config(), tmp_path / "export")
    stock = open_clip.create_model(f"local-dir:{tmp_path / 'export'}").eval()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ours = wrapper(images)["image"]
        theirs = stock.encode_image(images, normalize=True)
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert stock.logit_scale.shape == torch.Size([])
    by_name = open_clip.create_model(NAME, pretrained=str(tmp_path / "export" / "open_clip_model.safetensors"))
    assert torch.equal(by_name.visual.proj, stock.visual.proj)
