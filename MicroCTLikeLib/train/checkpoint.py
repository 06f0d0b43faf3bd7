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
    problem = _file_problem(path)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - a damaged pickle can raise nearly anything (IndexError, KeyError, ...)
        raise CheckpointError(f"{path}: {_load_problem(error)}") from None
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
    check_architecture(payload, path)
    model_name = (payload.get("model") or {}).get("name")
    if expected_model is not None and model_name != expected_model:
        raise CheckpointError(
            f"{path}: checkpoint holds a {model_name!r} model, not {expected_model!r}; "
            f"pick a {expected_model} checkpoint or use --model {model_name}"
        )
    return payload


def _file_problem(path: Path) -> str:
    """What is wrong with a file before torch sees it ("" when it looks like a torch archive)."""
    import zipfile

    size = path.stat().st_size
    if size == 0:
        return "the checkpoint file is empty (0 bytes); it was not written completely, use another checkpoint"
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != b"PK\x03\x04":
        return ("not a checkpoint: the file is not a PyTorch archive (random or foreign bytes); use a .pt file written "
                "by `microctlike train`")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return ("the checkpoint is truncated or corrupt (its archive directory is missing or damaged, as after an "
                "interrupted copy); copy it again or use another checkpoint, e.g. checkpoints/last.pt or a step_N.pt")
    if not any(name.endswith("data.pkl") for name in names):
        return "not a checkpoint: the archive holds no PyTorch data record; use a .pt file written by `microctlike train`"
    return ""


def _load_problem(error: Exception) -> str:
    """Our words for a failed safe load (never the advice to load unsafely)."""
    text = str(error)
    if "Weights only load failed" in text or "Unsupported global" in text or "weights_only" in text:
        return ("the checkpoint holds Python objects other than tensors and plain data (possibly code); MicroCTLike "
                "loads checkpoints safely and refused it. Use a checkpoint written by `microctlike train`; do not load "
                "files from untrusted sources")
    if isinstance(error, (EOFError, RuntimeError)) and ("EOF" in text or "unexpected end" in text or
                                                        "PytorchStreamReader" in text or "file read failed" in text):
        return ("the checkpoint is truncated or corrupt (a record inside it is incomplete); copy it again or use another "
                "checkpoint, e.g. checkpoints/last.pt or a step_N.pt")
    return ("the checkpoint is corrupt (its contents cannot be decoded); copy it again or use another checkpoint, "
            "e.g. checkpoints/last.pt or a step_N.pt")


def check_architecture(payload: Mapping[str, Any], path) -> None:
    """The architecture a checkpoint names must be the one its stored config builds."""
    model_info = payload.get("model") or {}
    name = model_info.get("name")
    config = model_info.get("config")
    config_name = config.get("name") if isinstance(config, Mapping) else None
    if config_name is not None and name != config_name:
        raise CheckpointError(
            f"{path}: the checkpoint is labelled {name!r} but its stored model config is {config_name!r}: another "
            "architecture relabelled; use the checkpoint its training run wrote"
        )


def check_weight_shapes(module, state: Mapping[str, Any], *, what: str, path, name: str) -> None:
    """Refuse weights whose tensor names or shapes differ from the architecture the checkpoint names."""
    expected = {key: tuple(value.shape) for key, value in module.state_dict().items()}
    given = {key: tuple(getattr(value, "shape", ())) for key, value in state.items()}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong = sorted(key for key in set(expected) & set(given) if expected[key] != given[key])
    if missing or unexpected or wrong:
        first = (wrong or missing or unexpected)[0]
        detail = (f"{first}: {given.get(first)} stored, {expected.get(first)} expected" if wrong
                  else f"{first} {'missing' if missing else 'not part of the model'}")
        raise CheckpointError(
            f"{path}: the {what} weights are not those of the {name!r} architecture the checkpoint names "
            f"({len(wrong)} tensors of another shape, {len(missing)} missing, {len(unexpected)} unknown; e.g. {detail}); "
            "the checkpoint is of another architecture or other model settings"
        )


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
    if not isinstance(payload["inference_generator"], Mapping):
        raise CheckpointError(f"{path}: the inference generator weights are not a table of tensors; the checkpoint is damaged")
    check_weight_shapes(generator, payload["inference_generator"], what="inference generator", path=path,
                        name=(payload.get("model") or {}).get("name"))
    load_state_dict_checked(generator, payload["inference_generator"], what="inference generator", path=path)
    generator.eval()
    for parameter in generator.parameters():
        parameter.requires_grad_(False)
    return generator.to(torch.device(device)), checkpoint_metadata(payload)
