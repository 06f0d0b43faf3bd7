"""``microctlike train``: train a translation model on a cohort (also behind ``train.py``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .options import SEED, int_in

HELP = "train a FUNIT/CycleGAN/StarGAN/pix2pixHD translation model on a cohort (CPU, CUDA, torchrun)"

# Mirrors models.registry (kept here so --help needs no torch import; checked again on resolve).
MODEL_CHOICES = ("funit", "cyclegan", "stargan", "pix2pixhd")
PRESET_CHOICES = ("tiny", "small", "default")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options; none clashes with 3D Slicer's own (--testing, --python-script, ...)."""
    parser.add_argument("--model", choices=MODEL_CHOICES, help="architecture (default funit; on --resume: the run's)")
    parser.add_argument("--data", metavar="COHORT_DIR", help="cohort folder (cohort.json + <case>/mdct.nrrd, microct.nrrd)")
    parser.add_argument("--out", metavar="RUN_DIR", required=True, help="run folder: config.json, log.csv, checkpoints/, samples/")
    parser.add_argument("--preset", choices=PRESET_CHOICES, help="model widths: tiny (CI), small (CPU), default (reference)")
    parser.add_argument("--steps", type=int_in(1, 10**9), help="total training iterations (a resumed run continues up to this)")
    parser.add_argument("--config", metavar="FILE", help="YAML or JSON file of options (see MicroCTLikeLib/train/config.py)")
    parser.add_argument("--resume", action="store_true", help="continue RUN_DIR/checkpoints/last.pt")
    parser.add_argument("--force", action="store_true", help="train into a non-empty RUN_DIR without resuming")
    parser.add_argument("--seed", type=SEED, help="random seed, >= 0 (default 0)")
    parser.add_argument("--device", help="auto (CUDA if available), cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int_in(1, 4096), dest="batch_size", help="crops per batch (per process), 1..4096")
    parser.add_argument("--crop", type=int_in(16, 4096, multiple_of=16), dest="crop_px", metavar="PX",
                        help="square crop side in pixels, 16..4096 and a multiple of 16")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="set_options",
        help="any other option, e.g. --set target_spacing_mm=0.052 --set model_overrides.lr=2e-4 (repeatable)",
    )
    parser.add_argument("--dry-run", action="store_true", dest="dry_run", help="print the resolved config as JSON and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def resolve_from_args(args) -> dict:
    """The resolved configuration for parsed arguments (the run's config.json is the base on --resume)."""
    from ..train.config import parse_set_option, resolve_config

    overrides = {}
    for text in args.set_options:
        key, value = parse_set_option(text)
        if key == "model_overrides":
            overrides.setdefault("model_overrides", {}).update(value)
        else:
            overrides[key] = value
    for key in ("model", "data", "out", "preset", "steps", "seed", "device", "batch_size", "crop_px"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    config_file = args.config
    if args.resume and config_file is None and (Path(args.out) / "config.json").is_file():
        config_file = str(Path(args.out) / "config.json")
    return resolve_config(file=config_file, overrides=overrides)


def run(args) -> int:
    from ..errors import InvalidParameterError

    config = resolve_from_args(args)
    if args.dry_run:
        print(json.dumps(config, indent=2, sort_keys=True))
        return 0
    if not config.get("data"):
        raise InvalidParameterError("--data COHORT_DIR is required (make a cohort with `microctlike simulate`)")

    from ..progress import tqdm_progress
    from ..train.distributed import dist_info_from_env
    from ..train.trainer import train

    from tqdm import tqdm

    quiet = args.quiet or not dist_info_from_env().is_main

    def say(message: str) -> None:  # above the progress bar, not through it
        tqdm.write(message, file=sys.stderr)

    with tqdm_progress("training", unit="step", disable=quiet) as progress:
        result = train(config, resume=args.resume, force=args.force, progress=progress, say=say)
    if dist_info_from_env().is_main:
        losses = " ".join(f"{key}={value:.4g}" for key, value in sorted(result.last_losses.items()))
        print(f"step {result.step}: {losses}".rstrip())
        print(f"checkpoint: {result.last_checkpoint}")
    return 0
