"""Translation networks: FUNIT (the product's generator) and the comparators CycleGAN,
StarGAN and pix2pixHD, behind one interface (:class:`~.base.TranslationModel`).

Importing this package does not import torch; :func:`build_model` and the model modules do.

>>> from MicroCTLikeLib.models import model_config, build_model
>>> model = build_model(model_config("funit", "tiny"))  # doctest: +SKIP
"""

from .registry import MODEL_NAMES, PRESETS, build_inference_generator, build_model, model_config

__all__ = ["MODEL_NAMES", "PRESETS", "build_model", "build_inference_generator", "model_config",
           "TranslationModel"]


def __getattr__(name):
    if name == "TranslationModel":  # torch only on demand
        from .base import TranslationModel
        return TranslationModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
