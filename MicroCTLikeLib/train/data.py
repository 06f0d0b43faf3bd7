"""Training data: a cohort folder -> normalised axial slices -> random crops.

A cohort folder holds ``cohort.json`` (manifest, optional) and one folder per specimen with
``mdct.nrrd`` (int16 HU) and ``microct.nrrd`` (micro-CT grey values), as written by
``microctlike simulate``.  Both volumes carry their LPS geometry, which is what makes the
paired (pix2pixHD) slices possible without registration.

Pipeline per specimen:

1. In-plane resampling of both modalities to ``target_spacing_mm`` (MDCT up, micro-CT down
   with a Gaussian anti-alias filter); slice positions are kept.  Micro-CT slices are
   thinned to about the target spacing along z (``microct_slice_step``).
2. Intensity windows to [-1, 1]: MDCT by a fixed HU window, micro-CT by a fixed grey window
   or one taken from percentiles of the training micro-CT (stored in the checkpoint).
3. Bone masks (thresholds) so that most crops are centred on bone.

Sampling (:class:`SliceSampler`) is unpaired: the MDCT and micro-CT slices of a batch are
drawn independently.  A model with context slices (FUNIT ``context_slices``) gets MDCT slabs:
the drawn slice and its neighbours along the stack (:func:`context_indices`), the same slabs
the generation engine builds, so training and inference see the same input.  pix2pixHD gets
*paired* slices: the micro-CT volume resampled onto the physical plane of each (resampled)
MDCT slice, using the simulator's known geometry.  For real scans without a shared frame,
the evaluation issue brings SIFT + DTW slice pairing; this module then takes those pairs
instead.

The split is by specimen, never by slice.  Everything random comes from a per-rank
``numpy.random.Generator`` seeded by ``(seed, rank)``; its state is checkpointed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..errors import InvalidParameterError, InvalidVolumeError
from ..volume import Volume, read_volume

MASK_STRIDE = 4  # bone masks are kept at 1/4 resolution: enough to place crop centres


# ---------------------------------------------------------------------------- cohort
@dataclasses.dataclass(frozen=True)
class CaseFiles:
    """The files of one specimen."""

    case_id: str
    mdct_path: Path
    microct_path: Path
    split: Optional[str] = None  # "train" / "test" when the manifest says


def _case_id(entry: Any) -> Optional[str]:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping):
        for key in ("id", "case_id", "case", "name"):
            if isinstance(entry.get(key), str):
                return entry[key]
    return None


def list_cohort(cohort_dir) -> List[CaseFiles]:
    """List the specimens of a cohort folder, with the manifest's split when it gives one.

    ``cohort.json`` may list ``cases`` (names or objects with ``id``/``case_id`` and an
    optional ``split``) and/or a ``split`` mapping ``{"train": [...], "test": [...]}``.
    Without a manifest every sub-folder holding both ``mdct.nrrd`` and ``microct.nrrd``
    is a case.
    """
    cohort_dir = Path(cohort_dir)
    if not cohort_dir.is_dir():
        raise InvalidParameterError(f"{cohort_dir}: cohort folder not found (make one with `microctlike simulate`)")
    manifest: Dict[str, Any] = {}
    manifest_path = cohort_dir / "cohort.json"
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise InvalidParameterError(f"{manifest_path}: not valid JSON ({error})") from None
        if not isinstance(manifest, dict):
            raise InvalidParameterError(f"{manifest_path}: expected a JSON object")

    splits: Dict[str, str] = {}
    split_block = manifest.get("split") or manifest.get("splits")
    if isinstance(split_block, Mapping):
        for name, ids in split_block.items():
            if isinstance(ids, (list, tuple)):
                for entry in ids:
                    if _case_id(entry):
                        splits[_case_id(entry)] = str(name)
    ids: List[str] = []
    files: Dict[str, Mapping[str, Any]] = {}  # the manifest may name the files (relative to the cohort)
    entries = manifest.get("cases")
    if isinstance(entries, Mapping):
        entries = [{"id": key, **(value if isinstance(value, Mapping) else {})} for key, value in entries.items()]
    if isinstance(entries, list):
        for entry in entries:
            case_id = _case_id(entry)
            if case_id is None:
                continue
            ids.append(case_id)
            if isinstance(entry, Mapping) and isinstance(entry.get("files"), Mapping):
                files[case_id] = entry["files"]
            if isinstance(entry, Mapping) and isinstance(entry.get("split"), str):
                splits.setdefault(case_id, entry["split"])
    if not ids:
        ids = sorted(p.name for p in cohort_dir.iterdir() if (p / "mdct.nrrd").is_file() and (p / "microct.nrrd").is_file())
    if not ids:
        raise InvalidParameterError(f"{cohort_dir}: no cases found (expected <case>/mdct.nrrd and <case>/microct.nrrd)")
    cases = []
    for case_id in ids:
        named = files.get(case_id, {})
        paths = [cohort_dir / str(named.get(kind) or Path(case_id) / f"{kind}.nrrd") for kind in ("mdct", "microct")]
        for path in paths:
            if not path.is_file():
                raise InvalidParameterError(f"{path}: listed in the cohort but missing")
        cases.append(CaseFiles(case_id, paths[0], paths[1], splits.get(case_id)))
    return cases


def select_split(cases: Sequence[CaseFiles], split: str, *, test_fraction: float, split_seed: int) -> List[CaseFiles]:
    """The specimens of one split (``train``, ``test`` or ``all``).

    The manifest's split is used when every case has one; otherwise a deterministic
    specimen split: a seeded permutation of the sorted case ids puts
    ``round(n * test_fraction)`` specimens in ``test`` (at least one case stays in train).
    """
    if split == "all":
        return list(cases)
    if all(case.split in ("train", "test") for case in cases):
        chosen = [case for case in cases if case.split == split]
    else:
        ordered = sorted(cases, key=lambda case: case.case_id)
        order = np.random.default_rng(split_seed).permutation(len(ordered))
        n_test = min(int(round(len(ordered) * test_fraction)), len(ordered) - 1)
        test_ids = {ordered[i].case_id for i in order[:n_test]}
        chosen = [case for case in cases if (case.case_id in test_ids) == (split == "test")]
    if not chosen:
        raise InvalidParameterError(f"the cohort has no {split!r} cases; use split 'all' or a larger cohort")
    return chosen


# ---------------------------------------------------------------------------- resampling
def _inplane_grid(volume: Volume, target_spacing_mm: float):
    """Size, spacing, origin of the grid with in-plane pixels of ``target_spacing_mm``, same field of view."""
    sx, sy, sz = volume.spacing_xyz_mm
    nz, ny, nx = volume.shape_zyx
    new_size = (max(1, int(round(nx * sx / target_spacing_mm))), max(1, int(round(ny * sy / target_spacing_mm))), nz)
    new_spacing = (target_spacing_mm, target_spacing_mm, sz)
    # keep the outer edge of the field of view: first pixel centre moves by (t - s) / 2
    shift_ijk = np.array([(target_spacing_mm - sx) / 2, (target_spacing_mm - sy) / 2, 0.0])
    origin = np.asarray(volume.origin_lps_mm) + volume.direction_lps @ shift_ijk
    return new_size, new_spacing, tuple(float(v) for v in origin)


def _antialias(volume: Volume, target_spacing_mm: float) -> np.ndarray:
    """Float32 voxels, low-pass filtered in-plane when the target spacing is coarser."""
    from scipy import ndimage

    array = volume.array.astype(np.float32)
    sx, sy, _ = volume.spacing_xyz_mm
    sigma = [0.0, 0.0, 0.0]
    for axis, s in ((2, sx), (1, sy)):
        if target_spacing_mm > s * 1.01:
            # Gaussian whose FWHM spans the coarser pixel (minus what the fine pixel already has)
            sigma[axis] = math.sqrt(target_spacing_mm**2 - s**2) / 2.355 / s
    if any(sigma):
        array = ndimage.gaussian_filter(array, sigma=sigma, mode="nearest")
    return array


def _sitk_image(array: np.ndarray, volume: Volume):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(volume.spacing_xyz_mm)
    image.SetOrigin(volume.origin_lps_mm)
    image.SetDirection(tuple(volume.direction_lps.ravel()))
    return image


def resample_inplane(volume: Volume, target_spacing_mm: float, *, reference=None, default_value: float = 0.0):
    """Resample ``volume`` to in-plane pixels of ``target_spacing_mm`` (linear).

    Parameters
    ----------
    volume : Volume
        Source volume (any in-plane spacing).
    target_spacing_mm : float
        Output pixel size along x and y in mm; the slice positions are kept.
    reference : SimpleITK.Image, optional
        Resample onto this grid instead (used to put micro-CT onto MDCT slice planes).
    default_value : float
        Value outside the source's field of view.

    Returns
    -------
    SimpleITK.Image
        float32 image on the output grid.
    """
    import SimpleITK as sitk

    image = _sitk_image(_antialias(volume, target_spacing_mm), volume)
    resampler = sitk.ResampleImageFilter()
    if reference is not None:
        resampler.SetReferenceImage(reference)
    else:
        size, spacing, origin = _inplane_grid(volume, target_spacing_mm)
        resampler.SetSize([int(v) for v in size])
        resampler.SetOutputSpacing(spacing)
        resampler.SetOutputOrigin(origin)
        resampler.SetOutputDirection(tuple(volume.direction_lps.ravel()))
    resampler.SetInterpolator(sitk.sitkLinear)
    resampler.SetDefaultPixelValue(float(default_value))
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    return resampler.Execute(image)


def normalise(array: np.ndarray, window: Sequence[float]) -> np.ndarray:
    """Map ``window = [low, high]`` linearly to [-1, 1], clipping outside (float32)."""
    low, high = float(window[0]), float(window[1])
    out = (np.asarray(array, dtype=np.float32) - low) * np.float32(2.0 / (high - low)) - np.float32(1.0)
    return np.clip(out, -1.0, 1.0, out=out)


def denormalise(array: np.ndarray, window: Sequence[float]) -> np.ndarray:
    """Inverse of :func:`normalise` (within the window)."""
    low, high = float(window[0]), float(window[1])
    return (np.asarray(array, dtype=np.float32) + 1.0) * np.float32((high - low) / 2.0) + np.float32(low)


# ---------------------------------------------------------------------------- slices in memory
@dataclasses.dataclass
class SliceStack:
    """Normalised slices of one modality for several specimens."""

    images: List[np.ndarray]  # per case (n_slices, H, W) in [-1, 1]
    masks: List[np.ndarray]  # per case (n_slices, ceil(H/4), ceil(W/4)) bool: bone
    index: np.ndarray  # (N, 2) int64: (case, slice) of every slice

    @classmethod
    def build(cls, images: List[np.ndarray], masks: List[np.ndarray]) -> "SliceStack":
        pairs = [(c, s) for c, stack in enumerate(images) for s in range(stack.shape[0])]
        return cls(images, masks, np.array(pairs, dtype=np.int64).reshape(-1, 2))

    def __len__(self) -> int:
        return int(self.index.shape[0])


@dataclasses.dataclass
class TrainingData:
    """Everything the sampler needs, plus what the checkpoint records about the data."""

    mdct: SliceStack
    microct: SliceStack
    paired_microct: Optional[List[np.ndarray]]  # per case, aligned with mdct.images (pix2pixHD)
    case_ids: List[str]
    cohort_dir: str
    mdct_window_hu: Tuple[float, float]
    microct_window: Tuple[float, float]
    target_spacing_mm: float
    #: per case, the MDCT's slice spacing along its stack in mm (for context slabs)
    mdct_slice_spacing_mm: Optional[List[float]] = None

    def summary(self) -> Dict[str, Any]:
        """JSON-serialisable description stored in checkpoints (training data summary)."""
        return {
            "cohort": self.cohort_dir,
            "case_ids": list(self.case_ids),
            "n_cases": len(self.case_ids),
            "n_mdct_slices": len(self.mdct),
            "n_microct_slices": len(self.microct),
            "paired": self.paired_microct is not None,
        }


def _pad_to(array: np.ndarray, min_size: int) -> np.ndarray:
    """Pad (n, H, W) with -1 (background) so H, W >= min_size."""
    pad_y = max(0, min_size - array.shape[1])
    pad_x = max(0, min_size - array.shape[2])
    if not pad_y and not pad_x:
        return array
    return np.pad(array, ((0, 0), (pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2)), constant_values=-1.0)


def _mask(bone: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(bone[:, ::MASK_STRIDE, ::MASK_STRIDE])


def microct_slice_step(spacing_z_mm: float, target_spacing_mm: float) -> int:
    """Keep every n-th micro-CT slice so slices lie about ``target_spacing_mm`` apart."""
    return max(1, int(round(target_spacing_mm / spacing_z_mm)))


def context_step_slices(context_step_mm: float, slice_spacing_mm: float) -> int:
    """Slices between two context slices: ``k = max(1, round(context_step_mm / slice_spacing_mm))``.

    Parameters
    ----------
    context_step_mm : float
        Wanted distance between context slices in mm (> 0).
    slice_spacing_mm : float
        Distance between the volume's slices along its stack in mm (> 0).

    Returns
    -------
    int
        ``k >= 1``. Training (:class:`SliceSampler`) and generation
        (:func:`MicroCTLikeLib.inference.generate_volume`) both use this rule.

    Examples
    --------
    >>> context_step_slices(0.3, 0.1)
    3
    """
    for name, value in (("context_step_mm", context_step_mm), ("slice_spacing_mm", slice_spacing_mm)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                or not math.isfinite(value) or value <= 0:
            raise InvalidParameterError(f"{name} must be a finite number > 0 (mm), got {value!r}")
    return max(1, int(round(float(context_step_mm) / float(slice_spacing_mm))))


def context_indices(z, n_slices: int, *, context_slices: int, step_slices: int) -> np.ndarray:
    """Slice indices of the context slab around slice(s) ``z``: ``z + j * k``, ``j = -N..N``.

    Indices outside the stack are clamped to its ends (the edge slice repeats).

    Parameters
    ----------
    z : int or array of int
        Translated slice index (indices) in ``0..n_slices - 1``.
    n_slices : int
        Slices in the stack.
    context_slices : int
        N, context slices on each side (>= 0).
    step_slices : int
        k, slices between context slices (>= 1; see :func:`context_step_slices`).

    Returns
    -------
    numpy.ndarray
        int64, shape ``z.shape + (2N+1,)``, lowest slice first; the centre is ``z``.

    Examples
    --------
    >>> context_indices(1, 10, context_slices=2, step_slices=3).tolist()
    [0, 0, 1, 4, 7]
    """
    if isinstance(context_slices, bool) or not isinstance(context_slices, (int, np.integer)) or context_slices < 0:
        raise InvalidParameterError(f"context_slices must be an integer >= 0, got {context_slices!r}")
    if isinstance(step_slices, bool) or not isinstance(step_slices, (int, np.integer)) or step_slices < 1:
        raise InvalidParameterError(f"step_slices must be an integer >= 1, got {step_slices!r}")
    if n_slices < 1:
        raise InvalidParameterError(f"a stack of {n_slices} slices has no context")
    offsets = np.arange(-context_slices, context_slices + 1, dtype=np.int64) * int(step_slices)
    return np.clip(np.asarray(z, dtype=np.int64)[..., None] + offsets, 0, int(n_slices) - 1)


def load_training_data(
    cases: Sequence[CaseFiles],
    config: Mapping[str, Any],
    *,
    cohort_dir: str = "",
    paired: bool = False,
    progress=None,
    cancel=None,
) -> TrainingData:
    """Read and prepare the slices of ``cases`` as ``config`` says.

    Parameters
    ----------
    cases : sequence of CaseFiles
        Specimens to load (one split).
    config : mapping
        Resolved training configuration (``target_spacing_mm``, windows, thresholds,
        ``crop_px``, ``cache_dtype``).
    paired : bool
        Also prepare the micro-CT resampled onto each MDCT slice plane (pix2pixHD).

    Returns
    -------
    TrainingData
        The micro-CT window actually used is in ``microct_window`` (from percentiles when
        the config gives none).
    """
    import SimpleITK as sitk

    from ..progress import raise_if_cancelled, report_progress

    if not cases:
        raise InvalidParameterError("no cases to train on")
    spacing = float(config["target_spacing_mm"])
    crop = int(config["crop_px"])
    cache_dtype = np.float16 if config["cache_dtype"] == "float16" else np.float32
    mdct_window = tuple(float(v) for v in config["mdct_window_hu"])
    mdct_threshold = float(config["mdct_bone_threshold_hu"])

    mdct_images, mdct_masks, micro_raw, paired_raw, mdct_spacing_z = [], [], [], [], []
    percentiles = []
    total = len(cases)
    for n, case in enumerate(cases):
        raise_if_cancelled(cancel, "loading training data")
        report_progress(progress, n, total, f"loading {case.case_id}")
        mdct = read_volume(case.mdct_path)
        microct = read_volume(case.microct_path)
        mdct_image = resample_inplane(mdct, spacing, default_value=-1024.0)
        mdct_hu = sitk.GetArrayFromImage(mdct_image)
        mdct_images.append(_pad_to(normalise(mdct_hu, mdct_window), crop).astype(cache_dtype))
        mdct_masks.append(_mask(_pad_to(np.where(mdct_hu > mdct_threshold, 1.0, -1.0).astype(np.float32), crop) > 0))
        mdct_spacing_z.append(float(mdct_image.GetSpacing()[2]))
        step = microct_slice_step(microct.spacing_xyz_mm[2], spacing)
        thinned = Volume(
            microct.array[::step],
            (microct.spacing_xyz_mm[0], microct.spacing_xyz_mm[1], microct.spacing_xyz_mm[2] * step),
            microct.origin_lps_mm,
            microct.direction_lps,
        )
        micro = sitk.GetArrayFromImage(resample_inplane(thinned, spacing, default_value=float(microct.array.min())))
        micro_raw.append(micro)
        percentiles.append(np.percentile(micro[:, ::2, ::2], list(config["microct_window_percentiles"])))
        if paired:
            paired_raw.append(
                sitk.GetArrayFromImage(
                    resample_inplane(microct, spacing, reference=mdct_image, default_value=float(microct.array.min()))
                )
            )
        if not np.isfinite(micro).all() or float(micro.max()) == float(micro.min()):
            raise InvalidVolumeError(f"{case.microct_path}: micro-CT is constant or not finite; cannot normalise it")

    if config.get("microct_window") is not None:
        micro_window = tuple(float(v) for v in config["microct_window"])
    else:  # mean of the per-specimen percentiles: stable and independent of case order
        micro_window = tuple(float(v) for v in np.mean(np.asarray(percentiles), axis=0))
        if not micro_window[0] < micro_window[1]:
            raise InvalidVolumeError("micro-CT grey window from percentiles is empty; set microct_window explicitly")
    micro_threshold = float(config["microct_bone_threshold"])
    micro_images, micro_masks = [], []
    for raw in micro_raw:
        normalised = _pad_to(normalise(raw, micro_window), crop)
        micro_images.append(normalised.astype(cache_dtype))
        micro_masks.append(_mask(normalised > micro_threshold))
    micro_raw.clear()
    paired_images = None
    if paired:
        paired_images = [_pad_to(normalise(raw, micro_window), crop).astype(cache_dtype) for raw in paired_raw]
    report_progress(progress, total, total, "training data ready")
    return TrainingData(
        mdct=SliceStack.build(mdct_images, mdct_masks),
        microct=SliceStack.build(micro_images, micro_masks),
        paired_microct=paired_images,
        case_ids=[case.case_id for case in cases],
        cohort_dir=str(cohort_dir),
        mdct_window_hu=mdct_window,
        microct_window=micro_window,
        target_spacing_mm=spacing,
        mdct_slice_spacing_mm=mdct_spacing_z,
    )


# ---------------------------------------------------------------------------- sampling
def shard_indices(n_items: int, rank: int, world_size: int) -> np.ndarray:
    """Indices ``rank, rank + world_size, ...`` of ``n_items``: each rank its own slices.

    Raises when a rank would get nothing (more processes than slices).
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise InvalidParameterError(f"bad rank {rank} of world size {world_size}")
    if n_items < world_size:
        raise InvalidParameterError(f"{n_items} slices cannot be shared by {world_size} processes; use fewer processes")
    return np.arange(rank, n_items, world_size, dtype=np.int64)


class SliceSampler:
    """Random crops of random slices; unpaired (independent MDCT and micro-CT) or paired.

    Parameters
    ----------
    data : TrainingData
    batch_size, crop_px : int
        Batch size and square crop side in pixels.
    seed : int
        With ``rank`` seeds the sampler's generator (``SeedSequence([seed, rank])``).
    rank, world_size : int
        This process's shard of the slices (:func:`shard_indices`).
    paired : bool
        Crop the micro-CT at the same place of the same (paired) slice as the MDCT.
    bone_crop_fraction : float
        Probability that a crop is centred on a bone-mask pixel.
    flip : bool
        Random left-right and up-down flips.
    context_slices : int
        N: with N > 0 each MDCT crop is a slab (2N+1, C, C) of the same case's slices
        :func:`context_indices` (``z + j * k``, clamped at the stack's ends) cropped at the
        same place with the same flips; the micro-CT stays one slice. 0 (default): one
        slice, and exactly the random numbers and crops of a sampler without the option.
    context_step_mm : float
        Distance between context slices in mm; ``k`` per case from that case's MDCT slice
        spacing (:func:`context_step_slices`, ``data.mdct_slice_spacing_mm``).
    z_stack_step_mm : float or None
        Paired sampling only (FUNIT's z-adversarial term). With a distance ``d`` in mm, each
        batch also holds ``"mdct_neighbours"`` (B, 2 * mdct channels, C, C): the MDCT crops
        (slabs with context slices) of the slices ``z - m`` and ``z + m``, ``m`` = that
        distance in slices (:func:`context_step_slices`), clamped at the stack's ends, and
        ``"microct_z"`` (B, 3, C, C): the registered micro-CT of the slices ``z - m, z, z + m``,
        all at the same place with the same flips. No extra random numbers are drawn, so
        the crops are those of a sampler without the option. None (default): off.
    """

    def __init__(
        self,
        data: TrainingData,
        *,
        batch_size: int,
        crop_px: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        paired: bool = False,
        bone_crop_fraction: float = 0.9,
        flip: bool = True,
        context_slices: int = 0,
        context_step_mm: float = 0.3,
        z_stack_step_mm: Optional[float] = None,
    ) -> None:
        if paired and data.paired_microct is None:
            raise InvalidParameterError("paired sampling needs data loaded with paired=True")
        self.z_steps: Optional[List[int]] = None  # m per case (z-adversarial stacks)
        if z_stack_step_mm is not None:
            if not paired:
                raise InvalidParameterError("z stacks (the z-adversarial term) need paired sampling")
            if data.mdct_slice_spacing_mm is None or len(data.mdct_slice_spacing_mm) != len(data.mdct.images):
                raise InvalidParameterError("z stacks need each case's MDCT slice spacing; load the data with "
                                            "load_training_data")
            self.z_steps = [context_step_slices(z_stack_step_mm, spacing) for spacing in data.mdct_slice_spacing_mm]
        if isinstance(context_slices, bool) or not isinstance(context_slices, (int, np.integer)) or context_slices < 0:
            raise InvalidParameterError(f"context_slices must be an integer >= 0, got {context_slices!r}")
        self.context_slices = int(context_slices)
        self.context_steps: Optional[List[int]] = None  # k per case
        if self.context_slices:
            spacings = data.mdct_slice_spacing_mm
            if spacings is None or len(spacings) != len(data.mdct.images):
                raise InvalidParameterError(
                    "context slices need each case's MDCT slice spacing (data.mdct_slice_spacing_mm); "
                    "load the data with load_training_data")
            self.context_steps = [context_step_slices(context_step_mm, spacing) for spacing in spacings]
        self.data = data
        self.batch_size = int(batch_size)
        self.crop_px = int(crop_px)
        self.paired = bool(paired)
        self.bone_crop_fraction = float(bone_crop_fraction)
        self.flip = bool(flip)
        self.mdct_shard = data.mdct.index[shard_indices(len(data.mdct), rank, world_size)]
        self.microct_shard = data.microct.index[shard_indices(len(data.microct), rank, world_size)]
        self.rng = np.random.default_rng([int(seed), int(rank)])
        self.batches_drawn = 0

    # -- state for bit-identical resume
    def state_dict(self) -> Dict[str, Any]:
        return {"bit_generator": _stringify(self.rng.bit_generator.state), "batches_drawn": self.batches_drawn}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = _unstringify(state["bit_generator"])
        self.batches_drawn = int(state["batches_drawn"])

    # -- drawing
    def _centre(self, rng, mask: np.ndarray, height: int, width: int) -> Tuple[int, int]:
        if rng.random() < self.bone_crop_fraction:
            candidates = np.flatnonzero(mask)
            if candidates.size:
                pick = int(candidates[rng.integers(candidates.size)])
                row, col = divmod(pick, mask.shape[1])
                return row * MASK_STRIDE, col * MASK_STRIDE  # the mask pixel itself: bone
        return int(rng.integers(height)), int(rng.integers(width))

    def _crop(self, image: np.ndarray, centre: Tuple[int, int], slices: Optional[np.ndarray] = None) -> np.ndarray:
        """The crop of a slice (H, W) -> (C, C), or of ``slices`` of a stack (n, H, W) -> (len, C, C)."""
        c = self.crop_px
        top = int(np.clip(centre[0] - c // 2, 0, image.shape[-2] - c))
        left = int(np.clip(centre[1] - c // 2, 0, image.shape[-1] - c))
        if slices is None:
            return image[top : top + c, left : left + c]
        return image[slices, top : top + c, left : left + c]

    def _flips(self, rng) -> Tuple[bool, bool]:
        if not self.flip:
            return False, False
        return bool(rng.random() < 0.5), bool(rng.random() < 0.5)

    @staticmethod
    def _apply(crop: np.ndarray, flips: Tuple[bool, bool]) -> np.ndarray:
        """Flip the last two axes (left-right, up-down) of a crop or a slab of crops."""
        if flips[0]:
            crop = crop[..., :, ::-1]
        if flips[1]:
            crop = crop[..., ::-1, :]
        return crop

    def _mdct_crop(self, stack: SliceStack, case: int, z: int, centre, flips, context: bool) -> np.ndarray:
        """The crop of slice ``z`` (C, C), or with context slices the slab around it (2N+1, C, C)."""
        if context and self.context_slices:  # the slab around z: same place, same flips
            slices = context_indices(z, stack.images[case].shape[0], context_slices=self.context_slices,
                                     step_slices=self.context_steps[case])
            return self._apply(self._crop(stack.images[case], centre, slices), flips)
        return self._apply(self._crop(stack.images[case][z], centre), flips)

    def _draw(self, rng, stack: SliceStack, shard: np.ndarray, partner: Optional[List[np.ndarray]] = None,
              *, context: bool = False, where: Optional[list] = None):
        case, z = shard[int(rng.integers(len(shard)))]
        image = stack.images[case][z]
        centre = self._centre(rng, stack.masks[case][z], image.shape[0], image.shape[1])
        flips = self._flips(rng)
        crop = self._mdct_crop(stack, case, z, centre, flips, context)
        other = None if partner is None else self._apply(self._crop(partner[case][z], centre), flips)
        if where is not None:
            where.append((int(case), int(z), centre, flips))
        return crop, other

    def _z_stacks(self, case: int, z: int, centre, flips) -> Tuple[np.ndarray, np.ndarray]:
        """MDCT crops of the slices ``z -+ m`` (channels stacked) and micro-CT crops of ``z - m, z, z + m``."""
        n = self.data.mdct.images[case].shape[0]
        below, above = (int(np.clip(z + sign * self.z_steps[case], 0, n - 1)) for sign in (-1, 1))
        neighbours = [self._mdct_crop(self.data.mdct, case, index, centre, flips, True) for index in (below, above)]
        neighbours = np.concatenate([c if c.ndim == 3 else c[None] for c in neighbours])
        micro = np.stack([self._apply(self._crop(self.data.paired_microct[case][index], centre), flips)
                          for index in (below, z, above)])
        return neighbours, micro

    def next_batch(self) -> Dict[str, np.ndarray]:
        """One batch ``{"mdct": (B,1,C,C), "microct": (B,1,C,C)}`` float32 in [-1, 1].

        With context slices ``"mdct"`` is (B, 2N+1, C, C), the translated slice in the centre.
        """
        mdct, micro, where = [], [], []
        for _ in range(self.batch_size):
            if self.paired:
                a, b = self._draw(self.rng, self.data.mdct, self.mdct_shard, self.data.paired_microct, context=True,
                                  where=where)
            else:
                a, _ = self._draw(self.rng, self.data.mdct, self.mdct_shard, context=True)
                b, _ = self._draw(self.rng, self.data.microct, self.microct_shard)
            mdct.append(a)
            micro.append(b)
        self.batches_drawn += 1
        batch = {"mdct": _stack(mdct), "microct": _stack(micro)}
        if self.z_steps is not None:  # the same places: no random numbers drawn
            stacks = [self._z_stacks(*w) for w in where]
            batch["mdct_neighbours"] = np.stack([s[0] for s in stacks]).astype(np.float32)
            batch["microct_z"] = np.stack([s[1] for s in stacks]).astype(np.float32)
        return batch

    def fixed_batch(self, n: int, *, seed: int) -> Dict[str, np.ndarray]:
        """``n`` crops from a generator of their own (sample images, class codes).

        Does not touch the training generator, so it never changes the training trajectory.
        """
        rng = np.random.default_rng([int(seed), 0x5A11])
        mdct, micro = [], []
        for _ in range(n):
            if self.paired:
                a, b = self._draw(rng, self.data.mdct, self.mdct_shard, self.data.paired_microct, context=True)
            else:
                a, _ = self._draw(rng, self.data.mdct, self.mdct_shard, context=True)
                b, _ = self._draw(rng, self.data.microct, self.microct_shard)
            mdct.append(a)
            micro.append(b)
        return {"mdct": _stack(mdct), "microct": _stack(micro)}


def _stack(crops: List[np.ndarray]) -> np.ndarray:
    """Crops (C, C) -> (B, 1, C, C); slabs (2N+1, C, C) -> (B, 2N+1, C, C); float32."""
    batch = np.stack(crops).astype(np.float32)
    return batch[:, None] if batch.ndim == 3 else batch


def _stringify(state: Any) -> Any:
    """numpy bit-generator state with 128-bit ints as strings (portable through any loader)."""
    if isinstance(state, dict):
        return {k: _stringify(v) for k, v in state.items()}
    if isinstance(state, int) and not isinstance(state, bool) and abs(state) >= 2**62:
        return f"int:{state}"
    return state


def _unstringify(state: Any) -> Any:
    if isinstance(state, dict):
        return {k: _unstringify(v) for k, v in state.items()}
    if isinstance(state, str) and state.startswith("int:"):
        return int(state[4:])
    return state
