"""``microctlike info``: what a checkpoint (or a model preset) holds."""

from __future__ import annotations

import argparse
import json

HELP = "describe a checkpoint or a model preset: architecture, parameter counts, normalisation, data"

MODEL_CHOICES = ("funit", "cyclegan", "stargan", "pix2pixhd")
PRESET_CHOICES = ("tiny", "small", "default")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", nargs="?", help="checkpoint file (.pt) written by `microctlike train`")
    parser.add_argument("--model", choices=MODEL_CHOICES, help="describe a model instead of a checkpoint")
    parser.add_argument("--preset", choices=PRESET_CHOICES, default="default", help="with --model (default: default)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def model_info(name: str, preset: str) -> dict:
    """Configuration and parameter counts of a model preset (built on CPU, not trained)."""
    from ..models import registry

    config = registry.model_config(name, preset)
    model = registry.build_model(config)
    counts = {key: int(value) for key, value in model.parameter_counts().items()}
    return {"model": {"name": name, "preset": preset, "config": config, "paired": bool(model.paired)}, "parameters": counts}


def checkpoint_info(path) -> dict:
    from ..train.trainer import describe_checkpoint

    meta = describe_checkpoint(path)
    meta["path"] = str(path)
    return meta


def _print_text(info: dict) -> None:
    model = info.get("model", {})
    print(f"model: {model.get('name')}" + (f" (preset {model['preset']})" if model.get("preset") else ""))
    params = info.get("parameters", {})
    for key in sorted(params):
        print(f"parameters.{key}: {params[key]:,} ({params[key] / 1e6:.2f} M)")
    for key in ("path", "format_version", "code_version", "created", "step", "target_spacing_mm"):
        if key in info:
            print(f"{key}: {info[key]}")
    for key, value in (info.get("normalisation") or {}).items():
        print(f"normalisation.{key}: {value}")
    data = info.get("training_data") or {}
    if data:
        print(f"training_data: {data.get('n_cases')} cases from {data.get('cohort')}: {', '.join(data.get('case_ids', []))}")
        print(f"training_data.slices: {data.get('n_mdct_slices')} MDCT, {data.get('n_microct_slices')} micro-CT")


def run(args) -> int:
    from ..errors import InvalidParameterError

    if (args.checkpoint is None) == (args.model is None):
        raise InvalidParameterError("give either a CHECKPOINT file or --model NAME [--preset P]")
    info = checkpoint_info(args.checkpoint) if args.checkpoint else model_info(args.model, args.preset)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True, default=str))
    else:
        _print_text(info)
    return 0
