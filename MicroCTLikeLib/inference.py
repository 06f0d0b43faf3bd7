"""Generation engine: MDCT volume in, micro-CT-like volume out.

The output lies on the checkpoint's target grid: in-plane pixels of ``target_spacing_mm``
covering the same field of view (outer pixel edges aligned), slices at the MDCT's slice
positions, the MDCT's direction matrix. So it overlays the input exactly in Slicer.

Slices go through the EMA generator (with FUNIT's stored micro-CT class code) one batch
at a time. A whole slice is the default; when it does not fit (CUDA out-of-memory) or when
asked, slices are cut into tiles whose normalisation statistics come from the whole slice
(:mod:`MicroCTLikeLib.tiling`), so tiling changes nothing a reader sees.

A generator trained with context slices (FUNIT ``context_slices = N`` in the checkpoint's
model config) gets, for each slice, the slab of the slices ``context_step_mm`` apart around
it, built batch by batch from the in-plane-resampled MDCT with the training sampler's rule
(:func:`MicroCTLikeLib.train.data.context_indices`); checkpoints without the option
translate one slice at a time as before.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import InvalidParameterError, VOIError
from .progress import raise_if_cancelled, report_progress
from .testing_hooks import pause_at
from .volume import Volume, validate_voxels

logger = logging.getLogger(__name__)

#: Slices are padded to a multiple of this before the generator (covers every model's total stride).
SIZE_MULTIPLE = 16
#: Context (mm) generated around a region so the measurement margin and the generator's
#: receptive field see real neighbours.
REGION_CONTEXT_MM = 2.0

Region = Union[None, str, Tuple[Sequence[float], Sequence[float]]]


@dataclasses.dataclass
class GenerationReport:
    """What a generation did: device, mode, timings, and any fallback it took."""

    device: str
    mode: str
    n_slices: int
    slice_shape: Tuple[int, int]
    seconds: float
    slices_per_second: float
    region: Optional[Dict[str, Any]] = None
    notes: list = dataclasses.field(default_factory=list)
    views: Tuple[str, ...] = ("axial",)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_device(device: str = "auto"):
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without CUDA is an error."""
    import torch

    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise InvalidParameterError("--device cuda was asked for but no CUDA device is available; use cpu or auto")
    if str(device) not in ("cpu",) and not str(device).startswith("cuda"):
        raise InvalidParameterError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


# ---------------------------------------------------------------------- regions
def region_slices(mdct: Volume, region: Region) -> Tuple[Tuple[slice, slice, slice], Optional[Dict[str, Any]]]:
    """Index slices (z, y, x) of the MDCT to generate, and a description of the region.

    ``region`` is ``None``/``"whole"``, ``"standard-vois"`` (the two standard VOIs found
    in the MDCT, plus :data:`REGION_CONTEXT_MM`), or a box ``(min_lps_mm, max_lps_mm)``.
    """
    whole = tuple(slice(0, n) for n in mdct.shape_zyx)
    if region is None or region == "whole":
        return whole, None  # type: ignore[return-value]
    if region == "standard-vois":
        from .voi import place_standard_vois, voi_slices

        placement = place_standard_vois(mdct)
        boxes = [voi_slices(mdct, voi, margin_mm=REGION_CONTEXT_MM) for voi in placement.vois]
        slices = tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(3))
        return slices, {"kind": "standard-vois", "vois": [v.to_dict() for v in placement.vois]}  # type: ignore[return-value]
    if isinstance(region, str):
        raise InvalidParameterError(f"unknown region {region!r}; use whole, standard-vois or a box")
    low, high = (np.asarray(v, dtype=float) for v in region)
    if low.shape != (3,) or high.shape != (3,) or np.any(high <= low):
        raise InvalidParameterError(f"a region box needs min and max LPS corners with min < max, got {region}")
    corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])])
    index = mdct.lps_to_index_zyx(corners)
    lo = np.maximum(np.floor(index.min(axis=0) + 1e-6).astype(int), 0)  # tolerance: corners on voxel centres
    hi = np.minimum(np.ceil(index.max(axis=0) - 1e-6).astype(int) + 1, mdct.shape_zyx)
    if np.any(hi <= lo):
        raise VOIError(f"the region box {low.tolist()} .. {high.tolist()} mm (LPS) does not overlap the MDCT volume")
    slices = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    return slices, {"kind": "box", "min_lps_mm": low.tolist(), "max_lps_mm": high.tolist()}  # type: ignore[return-value]


def parse_region(text: Optional[str]) -> Region:
    """Parse the CLI's ``--region``: ``whole``, ``standard-vois`` or ``L0,P0,S0,L1,P1,S1`` (LPS mm)."""
    if text in (None, "", "whole", "standard-vois"):
        return text or None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 6:
        raise InvalidParameterError(
            f"--region {text!r}: use whole, standard-vois or a box of six LPS numbers in mm: L0,P0,S0,L1,P1,S1"
        )
    return (values[:3], values[3:])


# ---------------------------------------------------------------------- the slice loop
def _pad_to_multiple(batch: np.ndarray, multiple: int) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Pad the last two axes of (N, H, W) or (N, C, H, W) at the bottom/right to a multiple."""
    height, width = batch.shape[-2:]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    if pad_h or pad_w:
        mode = "reflect" if min(height, width) > max(pad_h, pad_w) else "edge"
        batch = np.pad(batch, ((0, 0),) * (batch.ndim - 2) + ((0, pad_h), (0, pad_w)), mode=mode)
    return batch, (height, width)


def context_options(metadata: Mapping[str, Any]) -> Tuple[int, float]:
    """``(context_slices, context_step_mm)`` of a checkpoint's model config; (0, 0.3) without them."""
    config = (metadata.get("model") or {}).get("config") or {}
    try:
        n = config.get("context_slices", 0)
        step_mm = float(config.get("context_step_mm", 0.3))
    except (TypeError, ValueError):
        n, step_mm = None, None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0 or step_mm is None:
        raise InvalidParameterError(
            f"the checkpoint's context_slices {config.get('context_slices')!r} / context_step_mm "
            f"{config.get('context_step_mm')!r} are not an integer >= 0 and a distance in mm")
    return int(n), step_mm


def translate_slices(generator, slices: np.ndarray, *, device, mode: str = "auto", batch_size: Optional[int] = None,
                     tile_core_px: int = 256, tile_halo_px: int = 128, progress=None, cancel=None,
                     notes: Optional[list] = None, autocast_dtype=None, context_slices: int = 0,
                     context_step_slices: int = 1,
                     z_range: Optional[Tuple[int, int]] = None) -> Tuple[np.ndarray, str]:
    """Translate (N, H, W) normalised slices; returns (N, H, W) float32 and the mode used.

    ``mode``: ``whole`` (whole slices), ``tiles`` (exact tiles, see :mod:`tiling`) or
    ``auto`` (whole slices; on CUDA out-of-memory halve the batch, then switch to tiles,
    then halve the tiles, noting each step in ``notes``).

    ``context_slices`` N > 0 feeds the generator (B, 2N+1, H, W) slabs: slice z with the
    slices ``z + j * context_step_slices``, ``j = -N..N``, clamped to the stack
    (:func:`MicroCTLikeLib.train.data.context_indices`, the training sampler's rule); each
    batch's slabs are built when it runs. ``z_range = (start, stop)`` translates only those
    slices (the output has ``stop - start``); the others still serve as context.
    """
    import torch

    from .tiling import translate_tiled
    from .train.data import context_indices

    if mode not in ("auto", "whole", "tiles"):
        raise InvalidParameterError(f"unknown mode {mode!r}; use auto, whole or tiles")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                   or not 1 <= batch_size <= 1024):
        raise InvalidParameterError(f"batch_size must be an integer in 1..1024, got {batch_size!r}")
    for name, value, low in (("tile_core_px", tile_core_px, SIZE_MULTIPLE), ("tile_halo_px", tile_halo_px, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= 8192:
            raise InvalidParameterError(f"{name} must be an integer in {low}..8192, got {value!r}")
    for name, value, low in (("context_slices", context_slices, 0), ("context_step_slices", context_step_slices, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InvalidParameterError(f"{name} must be an integer >= {low}, got {value!r}")
    first, stop = (0, slices.shape[0]) if z_range is None else (int(z_range[0]), int(z_range[1]))
    if not 0 <= first < stop <= slices.shape[0]:
        raise InvalidParameterError(
            f"z_range {z_range} must be (start, stop) with 0 <= start < stop <= {slices.shape[0]}")
    notes = notes if notes is not None else []
    n_slices = stop - first
    if batch_size is None:
        batch_size = 8 if device.type == "cuda" else 1
    current_mode = "tiles" if mode == "tiles" else "whole"
    output = np.empty((n_slices,) + slices.shape[1:], dtype=np.float32)
    done = 0
    report_progress(progress, 0, n_slices, "slices")
    while done < n_slices:
        raise_if_cancelled(cancel, "generation")
        count = min(batch_size, n_slices - done) if current_mode == "whole" else 1
        if context_slices:  # (count, 2N+1, H, W): only this batch's slabs are copied
            rows = context_indices(np.arange(first + done, first + done + count), slices.shape[0],
                                   context_slices=int(context_slices), step_slices=int(context_step_slices))
            padded, (height, width) = _pad_to_multiple(slices[rows], SIZE_MULTIPLE)
        else:
            padded, (height, width) = _pad_to_multiple(slices[first + done:first + done + count], SIZE_MULTIPLE)
            padded = padded[:, None]
        try:
            with torch.no_grad(), torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                x = torch.from_numpy(np.ascontiguousarray(padded, dtype=np.float32)).to(device)
                if current_mode == "whole":
                    y = generator(x)
                else:
                    y = translate_tiled(generator, x, core_px=tile_core_px, halo_px=tile_halo_px,
                                        multiple=SIZE_MULTIPLE, cancel=cancel)
                result = y.float()[:, 0, :height, :width].cpu().numpy()
        except torch.cuda.OutOfMemoryError:
            if mode == "whole":
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if current_mode == "whole" and batch_size > 1:
                batch_size //= 2
                notes.append(f"CUDA out of memory: batch reduced to {batch_size} slices")
            elif current_mode == "whole":
                current_mode = "tiles"
                notes.append(f"CUDA out of memory on one whole slice: switched to exact tiles of {tile_core_px} px")
            elif tile_core_px > 2 * SIZE_MULTIPLE:
                tile_core_px = max(SIZE_MULTIPLE, (tile_core_px // 2) // SIZE_MULTIPLE * SIZE_MULTIPLE)
                notes.append(f"CUDA out of memory: tiles reduced to {tile_core_px} px")
            else:
                raise
            for note in notes[-1:]:
                logger.warning(note)
            continue
        output[done:done + count] = result
        done += count
        report_progress(progress, done, n_slices, "slices")
        if done < n_slices:
            pause_at("generate:slices")
    return output, current_mode


# ---------------------------------------------------------------------- orthogonal views
#: slice orientations a 2-D generator can translate, named for an axial acquisition: the
#: volume's k planes (the slices as acquired), j planes and i planes
VIEWS = ("axial", "coronal", "sagittal")
#: the study's generation: the acquired slices only
DEFAULT_VIEWS = ("axial",)


def parse_views(views) -> Tuple[str, ...]:
    """A validated tuple of distinct view names from a sequence or a ``+``/``,`` separated string.

    ``"all"`` means the three views.
    """
    if isinstance(views, str):
        views = VIEWS if views.strip().lower() == "all" else [v for v in views.replace(",", "+").split("+")]
    names = tuple(str(v).strip().lower() for v in views)
    unknown = [v for v in names if v not in VIEWS]
    if not names or unknown or len(set(names)) != len(names):
        raise InvalidParameterError(
            f"views must be distinct names among {', '.join(VIEWS)} (or 'all'), got {'+'.join(names) or 'none'}")
    return tuple(v for v in VIEWS if v in names)  # a fixed order: the same views give the same sum


def resample_slices_linear(stack: np.ndarray, spacing_mm: float, new_spacing_mm: float,
                           n_out: Optional[int] = None) -> np.ndarray:
    """Linear interpolation of a (Z, H, W) stack along Z from ``spacing_mm`` to ``new_spacing_mm``.

    The first slices coincide; ``n_out`` (default: as many as fit in the stack's extent) sets
    the number of output slices, positions past the last input slice repeat it.
    """
    n_in = stack.shape[0]
    if n_out is None:
        n_out = int(np.floor((n_in - 1) * spacing_mm / new_spacing_mm + 1e-6)) + 1
    position = np.clip(np.arange(n_out) * (new_spacing_mm / spacing_mm), 0.0, n_in - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    weight = (position - low).astype(np.float32)[:, None, None]
    return (stack[low] * (1.0 - weight) + stack[high] * weight).astype(np.float32)


def _offset_progress(progress, offset: int, total: int, label: str):
    if progress is None:
        return None
    return lambda done, _total, _message="": progress(offset + done, total, label)


# ---------------------------------------------------------------------- volumes
def generate_volume(mdct: Volume, generator, metadata: Mapping[str, Any], *, region: Region = None,
                    device="auto", mode: str = "auto", batch_size: Optional[int] = None, tile_core_px: int = 256,
                    tile_halo_px: int = 128, precision: str = "fp32", views=DEFAULT_VIEWS, progress=None,
                    cancel=None) -> Tuple[Volume, GenerationReport]:
    """Translate an MDCT volume (HU) into a micro-CT-like volume.

    Parameters
    ----------
    mdct : Volume
        Clinical CT in HU (any spacing and direction; slices are the volume's k planes).
    generator : torch.nn.Module
        ``forward((B,1,H,W) in [-1,1]) -> (B,1,H,W) in [-1,1]``, e.g. from
        :func:`MicroCTLikeLib.train.checkpoint.load_inference_model` (already on ``device``);
        with context slices ``forward((B,2N+1,H,W))``.
    metadata : mapping
        Checkpoint metadata with ``normalisation`` = {``target_spacing_mm``,
        ``mdct_window_hu``, ``microct_window``}. ``model.config`` may hold
        ``context_slices`` (N) and ``context_step_mm``: each slice is then translated with
        the slices ``k = max(1, round(context_step_mm / slice spacing))`` apart around it
        (clamped at the volume's ends; a region also takes its context from outside itself).
    region : None, "whole", "standard-vois" or (min_lps_mm, max_lps_mm)
        Part of the MDCT to generate; the output covers only that part.
    device : "auto", "cpu", "cuda" or torch.device
    mode : "auto", "whole" or "tiles"
        See :func:`translate_slices`.
    precision : "fp32", "bf16" or "fp16"
        Autocast dtype on CUDA (ignored on CPU, which runs fp32).
    views : sequence of "axial", "coronal", "sagittal" (or "all", or "axial+coronal")
        Slice orientations to translate (default: axial, the study's). A 2-D generator
        sharpens structure only within the slices it translates; along the third axis its
        output follows the MDCT's blur. With more views the MDCT (resampled along z to the
        in-plane pixel) is also translated as j planes ("coronal") and/or i planes
        ("sagittal"), each translation is brought back to the output grid (linear in z) and
        the views are averaged. Cost: one translation per view. Needs a generator without
        context slices.
    progress, cancel
        See :mod:`MicroCTLikeLib.progress`.

    Returns
    -------
    volume : Volume
        float32 micro-CT-like grey values (the training micro-CT's units) on the target grid.
    report : GenerationReport
    """
    import torch

    from .train.data import context_step_slices, denormalise, normalise, resample_inplane

    validate_voxels(mdct, "MDCT volume")
    norm = metadata.get("normalisation") or {}
    try:
        target_spacing_mm = float(norm["target_spacing_mm"])
        mdct_window = [float(v) for v in norm["mdct_window_hu"]]
        microct_window = [float(v) for v in norm["microct_window"]]
    except (KeyError, TypeError, ValueError):
        raise InvalidParameterError("the checkpoint metadata lacks its normalisation (target spacing, windows)") from None
    torch_device = device if isinstance(device, torch.device) else resolve_device(device)
    autocast_dtype = None
    if torch_device.type == "cuda" and precision != "fp32":
        autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        if autocast_dtype is None:
            raise InvalidParameterError(f"unknown precision {precision!r}; use fp32, bf16 or fp16")

    views = parse_views(views)
    context_slices, context_step_mm = context_options(metadata)
    if context_slices and views != ("axial",):
        raise InvalidParameterError(
            f"a generator with context slices translates axial slices only; got views {'+'.join(views)}")
    step_slices = context_step_slices(context_step_mm, mdct.spacing_xyz_mm[2]) if context_slices else 1
    slices, region_info = region_slices(mdct, region)
    from .voi import crop_volume

    z_range = None
    if region_info and context_slices:  # the region's first and last slices see real neighbours too
        reach = context_slices * step_slices
        low, high = max(0, slices[0].start - reach), min(mdct.shape_zyx[0], slices[0].stop + reach)
        z_range = (slices[0].start - low, slices[0].stop - low)
        slices = (slice(low, high),) + tuple(slices[1:])
    source = crop_volume(mdct, slices) if region_info else mdct
    resampled = resample_inplane(source, target_spacing_mm, default_value=-1000.0)
    import SimpleITK as sitk

    grid = Volume.from_sitk(resampled, source="resampled MDCT")
    if z_range is not None:
        grid = crop_volume(grid, (slice(*z_range), slice(None), slice(None)))
    hu = sitk.GetArrayViewFromImage(resampled)
    notes: list = []
    start = time.perf_counter()
    options = dict(device=torch_device, batch_size=batch_size, tile_core_px=tile_core_px, tile_halo_px=tile_halo_px,
                   cancel=cancel, notes=notes, autocast_dtype=autocast_dtype)
    normalised = normalise(hu, mdct_window)
    slice_mm = float(resampled.GetSpacing()[2])
    isotropic = None
    if views != ("axial",):  # the other views need square pixels: z resampled to the in-plane pixel
        isotropic = resample_slices_linear(normalised, slice_mm, target_spacing_mm)
    counts = {"axial": normalised.shape[0], "coronal": normalised.shape[1], "sagittal": normalised.shape[2]}
    total = sum(counts[v] for v in views)
    done = 0
    summed = None
    used_mode = mode
    for view in views:
        view_progress = _offset_progress(progress, done, total, f"{view} slices" if len(views) > 1 else "slices")
        if view == "axial":
            translated, used_mode = translate_slices(
                generator, normalised, mode=mode, progress=view_progress, context_slices=context_slices,
                context_step_slices=step_slices, z_range=z_range, **options)
        else:  # (Z, y, x) -> slices along y (Z, x) or along x (Z, y), translated, and back
            order = (1, 0, 2) if view == "coronal" else (2, 0, 1)
            stack = np.ascontiguousarray(isotropic.transpose(order))
            out, used_mode = translate_slices(generator, stack, mode=mode, progress=view_progress, **options)
            out = out.transpose(np.argsort(order))
            translated = resample_slices_linear(out, target_spacing_mm, slice_mm, n_out=normalised.shape[0])
        summed = translated.astype(np.float32) if summed is None else summed + translated
        done += counts[view]
    translated = summed / len(views) if len(views) > 1 else summed
    if len(views) > 1:
        notes.append(f"views {'+'.join(views)} averaged")
    seconds = time.perf_counter() - start
    output = grid.with_array(
        denormalise(translated, microct_window),
        modality="micro-CT-like", source=str(mdct.metadata.get("source", "MDCT")),
        generator=str((metadata.get("model") or {}).get("name", "unknown")),
    )
    report = GenerationReport(
        device=str(torch_device), mode=used_mode, n_slices=int(translated.shape[0]),
        slice_shape=tuple(int(v) for v in translated.shape[1:]), seconds=round(seconds, 3),
        slices_per_second=round(translated.shape[0] / max(seconds, 1e-9), 3), region=region_info, notes=notes,
        views=views,
    )
    return output, report


def generate_from_checkpoint(mdct: Volume, checkpoint_path, **kwargs) -> Tuple[Volume, GenerationReport]:
    """Load ``checkpoint_path`` (see :func:`bundled_model_path`) and run :func:`generate_volume`."""
    from .train.checkpoint import load_inference_model

    device = resolve_device(kwargs.pop("device", "auto"))
    generator, metadata = load_inference_model(checkpoint_path, device=device)
    return generate_volume(mdct, generator, metadata, device=device, **kwargs)


BUNDLED_MODEL_NAME = "microctlike_generator.pt"


def bundled_model_path():
    """Path of the generator shipped with the extension.

    Looked up in order: ``$MICROCTLIKE_MODEL``; the source tree's
    ``MicroCTLike/Resources/Models``; an installed Slicer extension's
    ``qt-scripted-modules/Resources/Models`` (the library sits beside the module there).
    Returns the first that exists, else the source-tree path (for the error message).
    """
    import os
    from pathlib import Path

    here = Path(__file__).resolve().parent
    candidates = []
    if os.environ.get("MICROCTLIKE_MODEL"):
        candidates.append(Path(os.environ["MICROCTLIKE_MODEL"]))
    candidates.append(here.parent / "MicroCTLike" / "Resources" / "Models" / BUNDLED_MODEL_NAME)
    candidates.append(here.parent / "Resources" / "Models" / BUNDLED_MODEL_NAME)
    return next((c for c in candidates if c.is_file()), candidates[0])
