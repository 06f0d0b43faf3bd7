"""Training configuration: defaults, a YAML/JSON file, command-line overrides.

The resolved configuration is one JSON-serialisable dict. It is written to
``RUN_DIR/config.json`` by the trainer, printed by ``--dry-run`` and stored in every
checkpoint, so a run can be reproduced and a checkpoint explains itself.

Precedence (later wins): :data:`DEFAULTS` < the model's preset (crop/batch suggestions)
< the config file < command-line overrides.  The model's own hyper-parameters come from
``MicroCTLikeLib.models.registry.model_config(model, preset, **model_overrides)`` and are
stored under ``"model_config"``.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ..errors import InvalidParameterError

#: Every training option with its default.  Units are in the names.
DEFAULTS: Dict[str, Any] = {
    "model": "funit",  # one of models.registry.MODEL_NAMES
    "preset": "default",  # tiny | small | default (model widths)
    "model_overrides": {},  # passed to model_config(**overrides)
    "data": None,  # cohort folder (cohort.json + <case>/mdct.nrrd, microct.nrrd)
    "out": None,  # run folder
    "steps": 100000,  # training iterations in total (a resumed run continues to this)
    "batch_size": None,  # None: the model preset's suggestion, else 4
    "crop_px": None,  # square crop side in pixels at target spacing; None: preset's suggestion, else 128
    "seed": 0,
    "device": "auto",  # auto | cpu | cuda | cuda:N
    "amp": "auto",  # auto (bf16 on CUDA when supported, fp32 on CPU) | bf16 | fp16 | off
    "channels_last": True,  # CUDA only
    "cpu_threads": None,  # torch intra-op threads while training (None: torch's default); restored after
    # data
    "split": "train",  # train | test | all: which specimens of the cohort to train on
    "test_fraction": 1.0 / 3.0,  # deterministic specimen split when cohort.json gives none (study: 25/75)
    "split_seed": 0,
    "target_spacing_mm": 0.104,  # in-plane pixel size both modalities are resampled to
    "mdct_window_hu": [-200.0, 1800.0],  # HU mapped to [-1, 1]
    "microct_window": None,  # [lo, hi] grey values; None: from percentiles of the training micro-CT
    "microct_window_percentiles": [0.5, 99.5],
    "bone_crop_fraction": 0.9,  # fraction of crops centred on bone (mask); the rest anywhere
    "mdct_bone_threshold_hu": 300.0,  # bone mask of MDCT slices
    "microct_bone_threshold": 0.0,  # bone mask of micro-CT slices, in normalised [-1, 1] units
    "flip": True,  # random left-right / up-down flips
    "cache_dtype": "float16",  # slices kept in memory as float16 (halves RAM) or float32
    # run
    "log_every": 10,
    "sample_every": 1000,
    "checkpoint_every": None,  # steps between checkpoints; None: a tenth of the run, at most 5000 (never > steps)
    "checkpoint_minutes": 30.0,  # also checkpoint when this many minutes passed since the last one (null: off)
    "keep_checkpoints": 5,  # newest step_N.pt files kept (null: all); last.pt is always kept
    "class_code_shots": 16,  # micro-CT slices averaged into FUNIT's stored class code
    "tensorboard": True,  # used only when the tensorboard package is importable
}

AMP_CHOICES = ("auto", "bf16", "fp16", "off")
SPLIT_CHOICES = ("train", "test", "all")


def load_config_file(path) -> Dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON configuration file into a dict."""
    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as error:  # yaml.YAMLError / json.JSONDecodeError
        raise InvalidParameterError(f"{path}: cannot parse config file ({error})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidParameterError(f"{path}: config file must hold a mapping of option: value")
    return data


def _merge(base: Dict[str, Any], update: Mapping[str, Any], source: str) -> Dict[str, Any]:
    for key, value in update.items():
        if key == "model_config":  # written by resolve_config; a file copied from config.json may hold it
            continue
        if key not in DEFAULTS:
            known = ", ".join(sorted(DEFAULTS))
            raise InvalidParameterError(f"{source}: unknown option {key!r}; known options: {known}")
        if key == "model_overrides":
            if not isinstance(value, Mapping):
                raise InvalidParameterError(f"{source}: model_overrides must be a mapping")
            base[key] = {**base[key], **value}
        else:
            base[key] = copy.deepcopy(value)
    return base


def resolve_config(
    *,
    file: Optional[str] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    registry=None,
) -> Dict[str, Any]:
    """Resolve the training configuration.

    Parameters
    ----------
    file : path, optional
        YAML or JSON file of options (keys of :data:`DEFAULTS`).
    overrides : mapping, optional
        Command-line values; ``None`` values are ignored (option not given).
    registry : module, optional
        Provides ``MODEL_NAMES``, ``PRESETS`` and ``model_config``; defaults to
        :mod:`MicroCTLikeLib.models.registry` (injectable for tests).

    Returns
    -------
    dict
        JSON-serialisable configuration including ``"model_config"``.
    """
    if registry is None:
        from ..models import registry
    config = copy.deepcopy(DEFAULTS)
    if file is not None:
        _merge(config, load_config_file(file), str(file))
    _merge(config, {k: v for k, v in (overrides or {}).items() if v is not None}, "command line")

    if config["model"] not in registry.MODEL_NAMES:
        raise InvalidParameterError(
            f"unknown model {config['model']!r}; choose one of {', '.join(registry.MODEL_NAMES)}"
        )
    if config["preset"] not in registry.PRESETS:
        raise InvalidParameterError(f"unknown preset {config['preset']!r}; choose one of {', '.join(registry.PRESETS)}")
    model_config = registry.model_config(config["model"], config["preset"], **config["model_overrides"])
    config["model_config"] = model_config
    if config["crop_px"] is None:
        config["crop_px"] = int(_first(model_config, ("suggested_crop_px", "crop_px"), 128))
    if config["batch_size"] is None:
        config["batch_size"] = int(_first(model_config, ("suggested_batch_size", "batch_size"), 4))
    validate_config(config)
    return config


def _first(mapping: Mapping[str, Any], keys, default):
    for key in keys:
        if mapping.get(key) is not None:
            return mapping[key]
    return default


def validate_config(config: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidParameterError` for values training cannot use."""

    def positive_int(key):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidParameterError(f"{key} must be a positive integer, got {value!r}")

    for key in ("steps", "batch_size", "crop_px", "log_every", "sample_every", "class_code_shots"):
        positive_int(key)
    if config["checkpoint_every"] is not None:
        positive_int("checkpoint_every")
    minutes = config["checkpoint_minutes"]
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, (int, float))
                                or not math.isfinite(minutes) or minutes <= 0):
        raise InvalidParameterError(f"checkpoint_minutes must be a positive number of minutes or null, got {minutes!r}")
    if config["crop_px"] % 16:
        raise InvalidParameterError(
            f"crop_px must be a multiple of 16 (the networks downsample by up to 16), got {config['crop_px']}"
        )
    if not isinstance(config["seed"], int) or isinstance(config["seed"], bool):
        raise InvalidParameterError(f"seed must be an integer, got {config['seed']!r}")
    spacing = config["target_spacing_mm"]
    if not isinstance(spacing, (int, float)) or not math.isfinite(spacing) or spacing <= 0:
        raise InvalidParameterError(f"target_spacing_mm must be a positive number of mm, got {spacing!r}")
    for key in ("mdct_window_hu", "microct_window", "microct_window_percentiles"):
        window = config[key]
        if window is None and key == "microct_window":
            continue
        if (
            not isinstance(window, (list, tuple))
            or len(window) != 2
            or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in window)
            or not window[0] < window[1]
        ):
            raise InvalidParameterError(f"{key} must be [low, high] with low < high, got {window!r}")
    if not 0.0 <= float(config["bone_crop_fraction"]) <= 1.0:
        raise InvalidParameterError(f"bone_crop_fraction must lie in [0, 1], got {config['bone_crop_fraction']}")
    if not 0.0 <= float(config["test_fraction"]) < 1.0:
        raise InvalidParameterError(f"test_fraction must lie in [0, 1), got {config['test_fraction']}")
    if config["amp"] not in AMP_CHOICES:
        raise InvalidParameterError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {config['amp']!r}")
    if config["split"] not in SPLIT_CHOICES:
        raise InvalidParameterError(f"split must be one of {', '.join(SPLIT_CHOICES)}, got {config['split']!r}")
    if config["cache_dtype"] not in ("float16", "float32"):
        raise InvalidParameterError(f"cache_dtype must be float16 or float32, got {config['cache_dtype']!r}")
    keep = config["keep_checkpoints"]
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise InvalidParameterError(f"keep_checkpoints must be a positive integer or null, got {keep!r}")
    threads = config["cpu_threads"]
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise InvalidParameterError(f"cpu_threads must be a positive integer or null, got {threads!r}")
    device = str(config["device"])
    if not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:")):
        raise InvalidParameterError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")


def checkpoint_interval(config: Mapping[str, Any]) -> int:
    """Steps between checkpoints: ``checkpoint_every``, or a tenth of the run (at most 5000);
    never more than the run's length, so a killed run always has a checkpoint to resume
    once a tenth of it is done."""
    steps = int(config["steps"])
    auto = max(1, min(5000, steps // 10))
    every = config.get("checkpoint_every")
    if every is None or int(every) > steps:
        return auto
    return int(every)


def parse_set_option(text: str):
    """Parse one ``KEY=VALUE`` command-line override; VALUE is read as YAML (numbers, lists, null)."""
    import yaml

    if "=" not in text:
        raise InvalidParameterError(f"--set expects KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    if isinstance(parsed, str):  # YAML 1.1 reads "2e-4" as text; it is a number here
        try:
            parsed = float(parsed)
        except ValueError:
            pass
    key = key.strip()
    if key.startswith("model_overrides."):
        return "model_overrides", {key.split(".", 1)[1]: parsed}
    return key, parsed


def write_config(config: Mapping[str, Any], path) -> Path:
    """Write the resolved configuration as JSON, atomically."""
    from ..atomic import atomic_write_bytes

    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    return atomic_write_bytes(Path(path), text.encode("utf-8"))
