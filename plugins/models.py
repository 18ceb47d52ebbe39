"""Model loader ``open_clip``: any open_clip architecture, weights from a tag, a file or the HF Hub.

``pretrained`` is one of

* an open_clip pretrained tag (``openai``, ``laion2b_s34b_b79k`` ...), downloaded by open_clip;
* a local checkpoint file, in any format open_clip reads: a plain state dict, a training checkpoint
  with the state dict under ``state_dict`` and ``module.`` prefixes (BMC-CLIP's format), safetensors;
* ``hf-hub:ORG/REPO[/FILE]``: ``FILE`` (default ``open_clip_pytorch_model.bin``) downloaded from the
  Hugging Face Hub and loaded like a local file, e.g. ``hf-hub:BIOMEDICA/BMC_CLIP_CF/BMC_CLIP_CF.pt``.

A ``model`` written ``hf-hub:ORG/REPO`` is an open_clip Hub model (config + weights) and ignores
``pretrained``. ``config`` declares a custom architecture under the name ``model`` (a dict with
``embed_dim``, ``vision_cfg``, ``text_cfg``, or the path of such a JSON file named ``<model>.json``).

Freezing (the paper's policy): the text tower is frozen, the vision tower is frozen except its last
``unlocked_vision_blocks`` transformer blocks (with the final norm) and its projection; ``-1`` trains the
whole vision tower. Locking goes through open_clip's own ``lock_image_tower``/``lock_text_tower``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from panel2patch.components import ModelLoader
from panel2patch.errors import Panel2PatchError
from panel2patch.hookspecs import hookimpl

HF_PREFIX = "hf-hub:"


class ModelLoadError(Panel2PatchError):
    """The model or its weights could not be built or loaded."""


class OpenClipLoader(ModelLoader):
    """Builds an open_clip model with the freezing policy above; ``load`` returns (model, preprocess, tokenizer).

    ``preprocess`` is open_clip's evaluation transform for the model (deterministic resize + crop), so
    crop boxes can be mapped exactly into model-input pixels.
    """

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str | None = None,
        config: dict[str, Any] | str | None = None,
        unlocked_vision_blocks: int = 5,
        lock_text: bool = True,
        train_logit_scale: bool = True,
        cache_dir: str | None = None,
        grad_checkpointing: bool = False,
        force_image_size: int | None = None,
    ) -> None:
        self.model = model
        self.pretrained = pretrained
        self.config = config
        self.unlocked_vision_blocks = unlocked_vision_blocks
        self.lock_text = lock_text
        self.train_logit_scale = train_logit_scale
        self.cache_dir = cache_dir
        self.grad_checkpointing = grad_checkpointing
        self.force_image_size = force_image_size
        self._model_cfg: dict[str, Any] | None = None
        self.weights: str | None = None

    def _register_config(self) -> None:
        import open_clip

        if self.config is None:
            return
        if self.model.startswith(HF_PREFIX):
            raise ModelLoadError(f"model {self.model!r} is a Hub model; 'config' applies to local names only")
        if isinstance(self.config, str):
            path = Path(self.config)
            if not path.is_file():
                raise ModelLoadError(f"model config file {self.config!r} does not exist")
            if path.stem != self.model:
                raise ModelLoadError(f"model config file {path.name!r} must be named {self.model}.json")
            open_clip.add_model_config(path)
            return
        missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in self.config]
        if missing:
            raise ModelLoadError(f"model config for {self.model!r} lacks {', '.join(missing)}")
        if self.model in _builtin_models():
            raise ModelLoadError(f"{self.model!r} is a built-in open_clip model; give a custom config a new name")
        folder = Path(tempfile.mkdtemp(prefix="panel2patch-open-clip-"))
        (folder / f"{self.model}.json").write_text(json.dumps(dict(self.config)), encoding="utf-8")
        open_clip.add_model_config(folder / f"{self.model}.json")

    def _weights(self) -> str | None:
        spec = self.pretrained
        if not spec or self.model.startswith(HF_PREFIX):
            return None
        if spec.startswith(HF_PREFIX):
            from open_clip.pretrained import download_pretrained_from_hf

            parts = spec[len(HF_PREFIX):].split("/")
            if len(parts) < 2 or not all(parts[:2]):
                raise ModelLoadError(f"pretrained {spec!r}: expected hf-hub:ORG/REPO or hf-hub:ORG/REPO/FILE")
            repo, filename = "/".join(parts[:2]), "/".join(parts[2:]) or None
            try:
                return download_pretrained_from_hf(repo, filename=filename, cache_dir=self.cache_dir)
            except Exception as exc:
                raise ModelLoadError(
                    f"cannot fetch {filename or 'the default weights file'} from Hub repo {repo!r}: {exc} "
                    "(without network, download it once and set pretrained to the local file)"
                ) from None
        looks_like_path = os.sep in spec or spec.endswith((".pt", ".pth", ".bin", ".safetensors", ".npz"))
        if looks_like_path and not os.path.isfile(spec):
            raise ModelLoadError(f"pretrained checkpoint file {spec!r} does not exist")
        return spec

    def load(self) -> tuple[Any, Any, Any]:
        import open_clip

        self._register_config()
        self.weights = self._weights()
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                self.model,
                pretrained=self.weights,
                cache_dir=self.cache_dir,
                force_image_size=self.force_image_size,
            )
            tokenizer = open_clip.get_tokenizer(self.model, cache_dir=self.cache_dir)
        except Panel2PatchError:
            raise
        except Exception as exc:
            raise ModelLoadError(
                f"open_clip could not build model {self.model!r} with pretrained={self.pretrained!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        self._model_cfg = self._lookup_config()
        self.freeze(model)
        if self.grad_checkpointing:
            model.set_grad_checkpointing(True)
        return model, preprocess, tokenizer

    def freeze(self, model: Any) -> None:
        """Apply the freezing policy to ``model`` in place."""
        if self.unlocked_vision_blocks >= 0:
            # open_clip's groups end with [..., last block + final norm, projection]
            model.lock_image_tower(unlocked_groups=self.unlocked_vision_blocks + 1)
        if self.lock_text:
            model.lock_text_tower()
        for name in ("logit_scale", "logit_bias"):
            param = getattr(model, name, None)
            if param is not None:
                param.requires_grad = self.train_logit_scale

    def _lookup_config(self) -> dict[str, Any] | None:
        import open_clip

        if self.model.startswith(HF_PREFIX):
            from open_clip.pretrained import download_pretrained_from_hf

            path = download_pretrained_from_hf(self.model[len(HF_PREFIX):], filename="open_clip_config.json",
                                               cache_dir=self.cache_dir)
            return json.loads(Path(path).read_text(encoding="utf-8"))["model_cfg"]
        cfg = open_clip.get_model_config(self.model)
        return dict(cfg) if cfg is not None else None

    def model_config(self) -> dict[str, Any] | None:
        return self._model_cfg


def _builtin_models() -> set[str]:
    import open_clip

    folder = Path(open_clip.__file__).parent / "model_configs"
    return {p.stem for p in folder.glob("*.json")}


@hookimpl
def register_model_loaders(register):
    register("open_clip", OpenClipLoader)
