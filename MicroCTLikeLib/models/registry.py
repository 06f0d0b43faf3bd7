"""Model names, width presets and construction.

``model_config(name, preset, **overrides)`` gives the full JSON-serialisable hyper-parameter
dict (it includes ``name`` and ``preset``); ``build_model(config)`` constructs the model.
Presets: ``tiny`` (CI: a few thousand to ~100 k parameters, an iteration on 32x32 crops in
well under a second on CPU), ``small`` (reduced width for CPU training; not the study's
network), ``default`` (the reference widths). ``suggested_crop_px`` and
``suggested_batch_size`` are hints for the trainer, not used by the model.

Trainable parameters, generator / discriminator (1 channel; CycleGAN sums both directions)::

    preset    funit                   cyclegan             stargan              pix2pixhd
    tiny      78,761 / 31,894         25,186 / 5,818       15,328 / 3,084       12,593 / 5,946
    small     7,475,265 / 13,535,138  981,890 / 349,154    381,312 / 703,984    1,966,465 / 349,666
    default   29,847,617 / 54,126,402 22,731,266 / 5,525,378 8,408,576 / 44,755,904 182,430,721 / 5,527,426
"""

from __future__ import annotations

import copy
import importlib
import math
import numbers

from ..errors import InvalidParameterError

MODEL_NAMES = ("funit", "cyclegan", "stargan", "pix2pixhd")
PRESETS = ("tiny", "small", "default")

_COMMON = {"in_channels": 1}

_DEFAULTS = {
    "funit": {
        "gen_nf": 64, "gen_latent_dim": 64, "gen_mlp_dim": 256, "gen_n_mlp_blocks": 3,
        "gen_n_res_blocks": 2, "gen_n_down_content": 3, "gen_n_down_class": 4,
        "dis_nf": 64, "dis_n_down": 4, "dis_max_nf": 1024, "dis_reference_inplace": True,
        "lr_gen": 1e-4, "lr_dis": 1e-4, "weight_decay": 1e-4,
        "gan_w": 1.0, "r1_w": 10.0, "rec_w": 0.1, "fm_w": 1.0, "ema_beta": 0.999,
        # our extensions, all off by default (the reference FUNIT; see models/funit.py):
        # forward-model consistency, level-preserving normalisation, paired L1 term (at full
        # resolution, or low-passed to the band the MDCT resolves), texture-scale spectrum term,
        # 2.5-D input: the content encoder also sees context_slices MDCT slices on each side,
        # context_step_mm apart
        "forward_w": 0.0, "forward_sigma_px": 2.5, "gen_norm": "instance",
        "gen_level_skip": False, "paired_w": 0.0, "paired_sigma_px": 0.0, "spectrum_w": 0.0,
        "context_slices": 0, "context_step_mm": 0.3,
        # z-adversarial term: a second discriminator judges stacks of three translated slices
        # z_adv_step_mm apart against the registered micro-CT's (needs the paired term)
        "z_adv_w": 0.0, "z_adv_step_mm": 0.2,
        "suggested_crop_px": 128, "suggested_batch_size": 64,
    },
    "cyclegan": {
        "gen_nf": 64, "gen_n_down": 2, "gen_n_res_blocks": 9, "dis_nf": 64, "dis_n_layers": 3,
        "lr": 2e-4, "betas": [0.5, 0.999], "cycle_w": 10.0, "identity_w": 0.5, "pool_size": 50,
        "suggested_crop_px": 256, "suggested_batch_size": 1,
    },
    "stargan": {
        "gen_nf": 64, "gen_n_down": 2, "gen_n_res_blocks": 6, "dis_nf": 64, "dis_n_layers": 6,
        "n_domains": 2, "lr_gen": 1e-4, "lr_dis": 1e-4, "betas": [0.5, 0.999],
        "cls_w": 1.0, "rec_w": 10.0, "gp_w": 10.0, "n_critic": 5,
        "suggested_crop_px": 128, "suggested_batch_size": 16,
    },
    "pix2pixhd": {
        "gen_nf": 64, "gen_n_down": 4, "gen_n_res_blocks": 9, "dis_nf": 64, "dis_n_layers": 3,
        "dis_n_scales": 2, "lr": 2e-4, "betas": [0.5, 0.999], "fm_w": 10.0, "vgg_w": 10.0,
        "vgg_weights_path": None,
        "suggested_crop_px": 256, "suggested_batch_size": 1,
    },
}

_PRESET_CHANGES = {
    ("funit", "small"): {"gen_nf": 32, "gen_mlp_dim": 128, "dis_nf": 32, "dis_max_nf": 512,
                         "suggested_crop_px": 64, "suggested_batch_size": 8},
    ("funit", "tiny"): {"gen_nf": 4, "gen_latent_dim": 8, "gen_mlp_dim": 16, "gen_n_res_blocks": 1,
                        "dis_nf": 4, "dis_n_down": 4, "dis_max_nf": 16,
                        "suggested_crop_px": 32, "suggested_batch_size": 2},
    ("cyclegan", "small"): {"gen_nf": 16, "gen_n_res_blocks": 6, "dis_nf": 16,
                            "suggested_crop_px": 64, "suggested_batch_size": 4},
    ("cyclegan", "tiny"): {"gen_nf": 4, "gen_n_res_blocks": 2, "dis_nf": 4, "dis_n_layers": 2,
                           "pool_size": 4, "suggested_crop_px": 32, "suggested_batch_size": 2},
    ("stargan", "small"): {"gen_nf": 16, "gen_n_res_blocks": 4, "dis_nf": 16, "dis_n_layers": 5,
                           "suggested_crop_px": 64, "suggested_batch_size": 8},
    ("stargan", "tiny"): {"gen_nf": 4, "gen_n_res_blocks": 2, "dis_nf": 4, "dis_n_layers": 3,
                          "suggested_crop_px": 32, "suggested_batch_size": 2},
    ("pix2pixhd", "small"): {"gen_nf": 16, "gen_n_down": 3, "gen_n_res_blocks": 6, "dis_nf": 16,
                             "suggested_crop_px": 64, "suggested_batch_size": 2},
    ("pix2pixhd", "tiny"): {"gen_nf": 4, "gen_n_down": 2, "gen_n_res_blocks": 2, "dis_nf": 4,
                            "dis_n_layers": 2, "suggested_crop_px": 32, "suggested_batch_size": 2},
}

#: string hyper-parameters and their allowed values
_CHOICES = {"gen_norm": ("instance", "none")}
#: most FUNIT context slices on each side of the translated one (the content encoder sees 2N+1)
MAX_CONTEXT_SLICES = 8
#: integer hyper-parameters whose range is not ">= 1": inclusive (low, high), high None = no limit
_INT_RANGES = {"context_slices": (0, MAX_CONTEXT_SLICES)}
#: float hyper-parameters that must lie in (0, high] (mm), with what they are
_POSITIVE_FLOATS = {"context_step_mm": (10.0, "the distance between context slices in mm"),
                    "z_adv_step_mm": (10.0, "the distance between the z-adversarial term's stacked slices in mm")}

_CLASSES = {
    "funit": ("funit", "FUNITModel"),
    "cyclegan": ("cyclegan", "CycleGANModel"),
    "stargan": ("stargan", "StarGANModel"),
    "pix2pixhd": ("pix2pixhd", "Pix2PixHDModel"),
}


def _check_name_preset(name, preset) -> None:
    if name not in MODEL_NAMES:
        raise InvalidParameterError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    if preset not in PRESETS:
        raise InvalidParameterError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")


def _validate(name: str, config: dict, defaults: dict) -> None:
    """Types and ranges, judged by the type of each key's default value."""
    def bad(key, why):
        raise InvalidParameterError(f"{name} hyper-parameter {key}={config[key]!r}: {why}")

    for key, default in defaults.items():
        value = config[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                bad(key, "must be true or false")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                bad(key, "must be an integer")
            low, high = _INT_RANGES.get(key, (0 if ("_n_res" in key or key.endswith("_n_down")) else 1, None))
            if high is not None and not low <= value <= high:
                bad(key, f"must be an integer in {low}..{high}")
            if value < low:
                bad(key, f"must be >= {low}")
        elif isinstance(default, float):
            finite = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
            if key in _POSITIVE_FLOATS and not (finite and 0 < value <= _POSITIVE_FLOATS[key][0]):
                bad(key, f"must be in (0, {_POSITIVE_FLOATS[key][0]:g}] ({_POSITIVE_FLOATS[key][1]})")
            if not finite or value < 0:
                bad(key, "must be a finite number >= 0")
            if key.startswith("lr") and value <= 0:
                bad(key, "a learning rate must be > 0")
            if key == "ema_beta" and not value < 1:
                bad(key, "must be < 1")
            if key == "forward_sigma_px" and not value > 0:
                bad(key, "must be > 0 (the clinical scanner's blur in pixels)")
        elif key == "betas":
            if (not isinstance(value, (list, tuple)) or len(value) != 2
                    or not all(isinstance(b, numbers.Real) and 0 <= b < 1 for b in value)):
                bad(key, "must be two numbers in [0, 1)")
        elif key in _CHOICES:
            if value not in _CHOICES[key]:
                bad(key, f"must be one of {', '.join(_CHOICES[key])}")
        elif key == "vgg_weights_path":
            if value is not None and not isinstance(value, str):
                bad(key, "must be a file path or null")


def model_config(name: str, preset: str = "default", **overrides) -> dict:
    """Full hyper-parameter dict of a model at a width preset, with overrides applied.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    preset : str
        One of :data:`PRESETS`.
    **overrides
        Keys of the returned dict to change; unknown keys raise InvalidParameterError.

    Returns
    -------
    dict
        JSON-serialisable; includes ``"name"`` and ``"preset"``.

    Examples
    --------
    >>> model_config("funit", "tiny", lr_gen=2e-4)["lr_gen"]
    0.0002
    """
    _check_name_preset(name, preset)
    config = {"name": name, "preset": preset, **_COMMON, **copy.deepcopy(_DEFAULTS[name])}
    config.update(copy.deepcopy(_PRESET_CHANGES.get((name, preset), {})))
    reference = copy.deepcopy(config)
    unknown = sorted(set(overrides) - set(config) | ({"name", "preset"} & set(overrides)))
    if unknown:
        raise InvalidParameterError(
            f"unknown hyper-parameter(s) {unknown} for model {name!r}; known: {sorted(set(config) - {'name', 'preset'})}")
    config.update(copy.deepcopy(overrides))
    if isinstance(config.get("betas"), tuple):
        config["betas"] = list(config["betas"])  # stay JSON-identical
    _validate(name, config, reference)
    return config


def _resolve(config: dict):
    if not isinstance(config, dict) or "name" not in config:
        raise InvalidParameterError("a model config is a dict with a 'name' key; make one with model_config()")
    name, preset = config["name"], config.get("preset", "default")
    _check_name_preset(name, preset)
    overrides = {k: v for k, v in config.items() if k not in ("name", "preset")}
    full = model_config(name, preset, **overrides)
    module_name, class_name = _CLASSES[name]
    return importlib.import_module(f"{__package__}.{module_name}"), class_name, full


def build_model(config: dict):
    """Construct the model a config describes (see :func:`model_config`).

    Keys missing from ``config`` (e.g. a checkpoint written before a key existed) are filled
    from its preset; unknown keys raise InvalidParameterError. torch is imported here.
    """
    module, class_name, full = _resolve(config)
    return getattr(module, class_name)(full)


def build_inference_generator(config: dict):
    """Only the inference module of a model (no discriminator, no optimizers), untrained.

    Its ``state_dict`` keys equal those of ``build_model(config).inference_generator()``, so
    a checkpoint's saved inference state loads into it with ``load_state_dict``. Cheaper
    than :func:`build_model` for generation (FUNIT's discriminator alone is 54 M parameters).
    """
    module, _, full = _resolve(config)
    return module.make_inference_generator(full)
