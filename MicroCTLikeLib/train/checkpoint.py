"""Checkpoints: atomic writes, safe loads, inference loading.

A checkpoint is one ``torch.save`` dict that ``torch.load(..., weights_only=True)`` reads
(tensors, numbers, strings, lists, tuples, dicts only).  Keys:

``format`` (:data:`FORMAT_NAME`), ``format_version``, ``code_version``, ``created``,
``model`` (``{"name", "config"}``: the architecture), ``parameters`` (generator /
discriminator counts), ``normalisation`` (``mdct_window_hu``, ``microct_window``,
``target_spacing_mm``), ``target_spacing_mm``, ``training_data`` (cohort, case ids, slice
counts), ``config`` (the resolved training config), ``step``;
for inference ``inference_generator`` (state_dict of ``model.inference_generator()``,
FUNIT's averaged micro-CT class code included);
for resuming ``networks``, ``optimizers``, ``extra_state``, ``rng`` (torch / CUDA / numpy /
python generators) and ``sampler`` (the data sampler's generator).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from ..atomic import atomic_output
from ..errors import CheckpointError

FORMAT_NAME = "microctlike-checkpoint"
#: Bump when the layout changes incompatibly; older readers refuse newer files.
FORMAT_VERSION = 1

#: Keys that hold weights or resume state; everything else is metadata.
STATE_KEYS = ("networks", "optimizers", "extra_state", "rng", "sampler", "inference_generator")


def save_checkpoint(payload: Mapping[str, Any], path) -> Path:
    """Save a checkpoint dict atomically (a killed writer never leaves a half file at ``path``).

    ``format``, ``format_version``, ``code_version`` and ``created`` are filled in.
    """
    import torch

    from .. import __version__

    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "code_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **payload,
    }
    path = Path(path)
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path, *, expected_model: Optional[str] = None, map_location="cpu") -> Dict[str, Any]:
    """Load and check a checkpoint (``weights_only=True``: no code runs while loading).

    Parameters
    ----------
    path : path
        A ``.pt`` file written by :func:`save_checkpoint`.
    expected_model : str, optional
        Raise when the checkpoint holds another architecture (e.g. ``"funit"``).
    map_location : str or torch.device
        Where tensors are put (default CPU).

    Raises
    ------
    CheckpointError
        Missing, corrupt or truncated file; not a MicroCTLike checkpoint; a newer format
        version than this code reads; another architecture than ``expected_model``.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - a damaged pickle can raise nearly anything (IndexError, KeyError, ...)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path}: cannot be read as a checkpoint (corrupt, truncated or unsafe file: {reason[:200]}); "
            "use another checkpoint, e.g. checkpoints/last.pt or a step_N.pt"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{path}: not a MicroCTLike checkpoint (no '{FORMAT_NAME}' format tag); "
            "train one with `microctlike train` or use a checkpoint it wrote"
        )
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is newer than this MicroCTLike reads "
            f"({FORMAT_VERSION}); update MicroCTLike"
        )
    model_name = (payload.get("model") or {}).get("name")
    if expected_model is not None and model_name != expected_model:
        raise CheckpointError(
            f"{path}: checkpoint holds a {model_name!r} model, not {expected_model!r}; "
            f"pick a {expected_model} checkpoint or use --model {model_name}"
        )
    return payload


def checkpoint_metadata(payload: Mapping[str, Any]) -> Dict[str, Any]:
    """The checkpoint without weights and resume state (what ``microctlike info`` prints)."""
    return {key: value for key, value in payload.items() if key not in STATE_KEYS}


def export_inference_checkpoint(source, destination) -> Path:
    """Write a small checkpoint for inference only: the metadata and the inference generator.

    Drops the discriminator, the training networks, the optimizers and the resume state, so a
    generator can ship inside the extension (``microctlike generate`` and the Slicer module
    load it like any checkpoint; ``--resume`` cannot continue it). The metadata gains
    ``exported_from`` (the source file name) and ``inference_only: true``.
    """
    payload = load_checkpoint(source)
    if "inference_generator" not in payload:
        raise CheckpointError(f"{source}: checkpoint holds no inference generator weights to export")
    slim = {key: value for key, value in payload.items()
            if key not in STATE_KEYS and key not in ("format", "format_version", "code_version", "created")}
    slim["inference_generator"] = payload["inference_generator"]
    slim["exported_from"] = Path(source).name
    slim["inference_only"] = True
    return save_checkpoint(slim, destination)


def load_state_dict_checked(module, state: Mapping[str, Any], *, what: str, path) -> None:
    """``module.load_state_dict(state)`` turning architecture mismatches into CheckpointError."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as error:
        first = str(error).strip().splitlines()
        raise CheckpointError(
            f"{path}: {what} weights do not fit this architecture ({' '.join(first[:2])[:300]}); "
            "the checkpoint was trained with other model settings"
        ) from None


def build_model_from_checkpoint(payload: Mapping[str, Any], *, path="checkpoint", registry=None):
    """Rebuild the :class:`TranslationModel` a checkpoint describes (weights not loaded)."""
    if registry is None:
        from ..models import registry
    model_info = payload.get("model") or {}
    if model_info.get("name") not in registry.MODEL_NAMES:
        raise CheckpointError(f"{path}: unknown model {model_info.get('name')!r} in checkpoint")
    try:
        return registry.build_model(dict(model_info["config"]))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot rebuild the model from its stored config ({error})") from None


def load_inference_model(path, device="cpu", *, expected_model: Optional[str] = None, registry=None) -> Tuple[Any, Dict[str, Any]]:
    """Load the inference generator of a checkpoint, ready for ``forward(mdct)``.

    Parameters
    ----------
    path : path
        Checkpoint written by the trainer (``checkpoints/last.pt`` or ``step_N.pt``).
    device : str or torch.device
        Where the module is put (``"cpu"``, ``"cuda"``).
    expected_model : str, optional
        Refuse another architecture.

    Returns
    -------
    module : torch.nn.Module
        In eval mode; ``forward(mdct (B,1,H,W) in [-1, 1]) -> (B,1,H,W) in [-1, 1]``.
    metadata : dict
        :func:`checkpoint_metadata`: normalisation windows, target spacing, model, data summary.

    Examples
    --------
    >>> generator, meta = load_inference_model("run/checkpoints/last.pt")  # doctest: +SKIP
    >>> meta["normalisation"]["target_spacing_mm"]  # doctest: +SKIP
    0.104
    """
    import torch

    payload = load_checkpoint(path, expected_model=expected_model, map_location="cpu")
    if "inference_generator" not in payload:
        raise CheckpointError(f"{path}: checkpoint holds no inference generator weights")
    model = build_model_from_checkpoint(payload, path=path, registry=registry)
    generator = model.inference_generator()
    load_state_dict_checked(generator, payload["inference_generator"], what="inference generator", path=path)
    generator.eval()
    for parameter in generator.parameters():
        parameter.requires_grad_(False)
    return generator.to(torch.device(device)), checkpoint_metadata(payload)
