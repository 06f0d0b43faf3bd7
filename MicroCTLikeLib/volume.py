"""The volume model: voxels plus the geometry that gives them meaning.

Conventions (the whole library follows them):

* ``array`` is indexed ``[z, y, x]`` (= ``[k, j, i]``), C order, as ``slicer.util.arrayFromVolume``
  and ``SimpleITK.GetArrayFromImage`` give it.
* Geometry is in ITK order ``(x, y, z)`` = ``(i, j, k)`` and in millimetres, in the **LPS**
  patient coordinate system of DICOM and ITK: +x towards the patient's Left, +y towards
  Posterior, +z towards Superior.  ``spacing_xyz_mm``, ``origin_lps_mm`` (centre of voxel
  (0, 0, 0)) and ``direction_lps`` (3x3; column c is the LPS unit vector of index axis c).
* Slicer works in RAS; :mod:`MicroCTLikeLib.mrml` converts (flip the sign of the
  first two physical coordinates).

So a simulated vertebra with identity direction has its anterior side at low ``y`` (row 0 of
an axial slice) and its superior side at high ``z``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .atomic import atomic_output
from .errors import InvalidVolumeError

PathLike = Union[str, os.PathLike]

#: File endings read and written through SimpleITK (a directory means a DICOM series).
SUPPORTED_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")


@dataclasses.dataclass(frozen=True)
class Volume:
    """A 3-D image with its physical geometry.

    Parameters
    ----------
    array : ndarray, shape (z, y, x)
        Voxel values; any real dtype.
    spacing_xyz_mm : tuple of 3 floats
        Voxel size along x, y, z in mm (> 0).
    origin_lps_mm : tuple of 3 floats
        LPS position (mm) of the centre of voxel index (0, 0, 0).
    direction_lps : ndarray (3, 3)
        Column c is the unit LPS direction of index axis c (c = 0 is x/i).
    metadata : dict
        Free-form string-keyed information (modality, units, provenance).
    """

    array: np.ndarray
    spacing_xyz_mm: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin_lps_mm: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction_lps: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(3))
    metadata: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "array", np.asarray(self.array))
        object.__setattr__(self, "spacing_xyz_mm", tuple(float(s) for s in self.spacing_xyz_mm))
        object.__setattr__(self, "origin_lps_mm", tuple(float(s) for s in self.origin_lps_mm))
        object.__setattr__(self, "direction_lps", np.asarray(self.direction_lps, dtype=float).reshape(3, 3))
        validate_geometry(self.array.shape, self.spacing_xyz_mm, self.origin_lps_mm, self.direction_lps)

    # ------------------------------------------------------------------ geometry
    @property
    def shape_zyx(self) -> Tuple[int, int, int]:
        return tuple(int(n) for n in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing_zyx_mm(self) -> Tuple[float, float, float]:
        """Spacing in array order, convenient for ``scipy.ndimage`` ``sampling=``."""
        sx, sy, sz = self.spacing_xyz_mm
        return (sz, sy, sx)

    def ijk_to_lps(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous (i, j, k, 1) = (x, y, z, 1) indices to LPS mm."""
        m = np.eye(4)
        m[:3, :3] = self.direction_lps @ np.diag(self.spacing_xyz_mm)
        m[:3, 3] = self.origin_lps_mm
        return m

    def index_zyx_to_lps(self, index_zyx: np.ndarray) -> np.ndarray:
        """Map (..., 3) continuous array indices (z, y, x) to LPS points (..., 3) in mm."""
        index_zyx = np.asarray(index_zyx, dtype=float)
        ijk = index_zyx[..., ::-1]
        m = self.ijk_to_lps()
        return ijk @ m[:3, :3].T + m[:3, 3]

    def lps_to_index_zyx(self, points_lps: np.ndarray) -> np.ndarray:
        """Map (..., 3) LPS points in mm to continuous array indices (z, y, x)."""
        points_lps = np.asarray(points_lps, dtype=float)
        m = self.ijk_to_lps()
        ijk = (points_lps - m[:3, 3]) @ np.linalg.inv(m[:3, :3]).T
        return ijk[..., ::-1]

    def centre_lps_mm(self) -> np.ndarray:
        """LPS position of the volume's centre (mm)."""
        return self.index_zyx_to_lps((np.array(self.shape_zyx, dtype=float) - 1) / 2)

    def with_array(self, array: np.ndarray, **metadata: Any) -> "Volume":
        """A new volume with the same geometry and other voxels (same shape required)."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise InvalidVolumeError(f"with_array: shape {array.shape} differs from {self.array.shape}")
        return dataclasses.replace(self, array=array, metadata={**self.metadata, **metadata})

    def same_geometry(self, other: "Volume", tol_mm: float = 1e-4) -> bool:
        return (
            self.shape_zyx == other.shape_zyx
            and np.allclose(self.spacing_xyz_mm, other.spacing_xyz_mm, atol=tol_mm)
            and np.allclose(self.origin_lps_mm, other.origin_lps_mm, atol=tol_mm)
            and np.allclose(self.direction_lps, other.direction_lps, atol=1e-6)
        )

    # ------------------------------------------------------------------ SimpleITK
    def to_sitk(self):
        """Convert to a ``SimpleITK.Image`` (pixels copied)."""
        import SimpleITK as sitk

        array = self.array
        if array.dtype == np.bool_:
            array = array.astype(np.uint8)
        image = sitk.GetImageFromArray(np.ascontiguousarray(array))
        image.SetSpacing(self.spacing_xyz_mm)
        image.SetOrigin(self.origin_lps_mm)
        image.SetDirection(tuple(self.direction_lps.ravel()))
        return image

    @classmethod
    def from_sitk(cls, image, metadata: Optional[Dict[str, Any]] = None, source: str = "image") -> "Volume":
        """Build a volume from a 3-D scalar ``SimpleITK.Image``."""
        import SimpleITK as sitk

        if image.GetDimension() != 3:
            raise InvalidVolumeError(f"{source}: expected a 3-D image, got {image.GetDimension()}-D")
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise InvalidVolumeError(
                f"{source}: expected one value per voxel, got {image.GetNumberOfComponentsPerPixel()} (colour/vector image)"
            )
        array = sitk.GetArrayFromImage(image)
        try:
            return cls(
                array=array,
                spacing_xyz_mm=image.GetSpacing(),
                origin_lps_mm=image.GetOrigin(),
                direction_lps=np.array(image.GetDirection()).reshape(3, 3),
                metadata=dict(metadata or {}),
            )
        except InvalidVolumeError as error:
            raise InvalidVolumeError(f"{source}: {error}") from None


def validate_geometry(shape: Sequence[int], spacing_xyz_mm, origin_lps_mm, direction_lps: np.ndarray) -> None:
    """Raise :class:`InvalidVolumeError` for geometry no measurement can trust."""
    if len(shape) != 3:
        raise InvalidVolumeError(f"expected a 3-D volume (z, y, x), got shape {tuple(shape)}")
    if min(shape) < 1:
        raise InvalidVolumeError(f"volume is empty (shape {tuple(shape)})")
    if len(spacing_xyz_mm) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing_xyz_mm):
        raise InvalidVolumeError(f"spacing must be three positive finite numbers in mm, got {spacing_xyz_mm}")
    if not all(np.isfinite(o) for o in origin_lps_mm):
        raise InvalidVolumeError(f"origin must be finite, got {origin_lps_mm}")
    if not np.all(np.isfinite(direction_lps)) or abs(abs(np.linalg.det(direction_lps)) - 1) > 1e-3:
        raise InvalidVolumeError("direction matrix must be a finite rotation (|det| = 1)")


#: plausible voxel sizes (mm) of any CT or micro-CT: a spacing outside is a damaged header
VOXEL_MM_RANGE = (1e-4, 100.0)


def validate_voxels(volume: Volume, source: str = "volume") -> Volume:
    """Check that the voxels can be measured: a plausible, finite geometry
    (:data:`VOXEL_MM_RANGE`); numeric, not all NaN, finite values.

    Returns the volume unchanged; raises :class:`InvalidVolumeError` with ``source`` named.
    """
    spacing = [float(v) for v in volume.spacing_xyz_mm]
    if not all(math.isfinite(v) and VOXEL_MM_RANGE[0] <= v <= VOXEL_MM_RANGE[1] for v in spacing):
        raise InvalidVolumeError(
            f"{source}: voxel size {' x '.join(f'{v:g}' for v in spacing)} mm is outside "
            f"{VOXEL_MM_RANGE[0]:g}-{VOXEL_MM_RANGE[1]:g} mm: the spacing (or the NIfTI sform/qform) is damaged; "
            "fix it (e.g. in Slicer's Volume Information) and save the file again")
    if not all(math.isfinite(float(v)) for v in volume.origin_lps_mm):
        raise InvalidVolumeError(f"{source}: the origin {tuple(volume.origin_lps_mm)} is not finite; the header is damaged")
    array = volume.array
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise InvalidVolumeError(f"{source}: voxel type {array.dtype} is not numeric")
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array)
        if not finite.any():
            raise InvalidVolumeError(f"{source}: every voxel is NaN or infinite")
        if not finite.all():
            n_bad = int(array.size - finite.sum())
            raise InvalidVolumeError(
                f"{source}: {n_bad} of {array.size} voxels are NaN or infinite; fill or crop them first"
            )
    return volume


# ---------------------------------------------------------------------- file IO
def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def read_volume(path: PathLike) -> Volume:
    """Read a volume from NRRD, NIfTI, MHA/MHD or a DICOM series directory.

    A directory is read as the DICOM series it holds (the largest one when there are
    several). The header is checked against the data before any voxel buffer is allocated
    (:mod:`MicroCTLikeLib.volume_headers`); ITK's own warnings are captured into the
    message (or a warning) instead of being printed. Raises :class:`InvalidVolumeError`
    naming the file for anything unreadable, empty, truncated, not 3-D or NaN-filled.
    """
    import SimpleITK as sitk

    from .volume_headers import precheck

    path = Path(path)
    if not path.exists():
        raise InvalidVolumeError(f"{path}: no such file or directory")
    captured = ""
    try:
        if path.is_dir():
            with _captured_stderr() as itk_output:
                try:
                    image = _read_dicom_series(path)
                finally:
                    captured = itk_output()
        else:
            if _suffix(path) not in SUPPORTED_SUFFIXES and _suffix(path) != ".dcm":
                raise InvalidVolumeError(
                    f"{path}: unsupported file type; use one of {', '.join(SUPPORTED_SUFFIXES)} or a DICOM folder"
                )
            precheck(path)
            with _captured_stderr() as itk_output:
                try:
                    image = sitk.ReadImage(str(path))
                finally:
                    captured = itk_output()
    except InvalidVolumeError as error:
        note = _itk_note(captured)
        if note and "ITK:" not in str(error) and "no series" not in note.lower():
            raise InvalidVolumeError(f"{error} (ITK: {note})") from None
        raise
    except (RuntimeError, MemoryError, OSError) as error:  # SimpleITK raises RuntimeError with a long ITK message
        reason = _itk_note(str(error)) or _itk_note(captured) or type(error).__name__
        if "no such file" in reason.lower() and path.is_file():
            # ITK reports a failed inflate or read of an existing file with errno's stale text
            reason = "its image data cannot be decoded; the file is damaged or truncated"
        raise InvalidVolumeError(f"{path}: cannot be read as an image ({reason})") from None
    note = _itk_note(captured)
    if "uncompress failed" in captured.lower():
        # MetaIO fills what it could not inflate with garbage and only prints this line
        raise InvalidVolumeError(f"{path}: its compressed image data cannot be decoded (ITK: Uncompress failed); "
                                 "the file is damaged or truncated")
    volume = Volume.from_sitk(image, metadata={"source": str(path)}, source=str(path))
    try:
        validate_voxels(volume, str(path))
    except InvalidVolumeError as error:  # one message: ITK's note belongs to it, not before it
        if note:
            raise InvalidVolumeError(f"{error} (ITK: {note})") from None
        raise
    if note:
        import warnings

        warnings.warn(f"{path}: ITK: {note}", stacklevel=2)
    return volume


def _itk_note(text: str) -> str:
    """The informative line of an ITK/GDCM message (their last non-empty line, without file:line noise)."""
    import re

    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("WARNING: In ", "ERROR: In ", "Warning: In "))]
    if not lines:
        return ""
    line = re.sub(r"^(itk::)?(ExceptionObject|ERROR|WARNING|Warning)[^:]*:\s*", "", lines[-1])
    line = re.sub(r"\s*/\S+\.(cxx|h|hxx|txx):\d+:?", "", line)
    line = re.sub(r"\s*\(0x[0-9a-fA-F]+\)", "", line).strip()
    return line[:300]


@contextlib.contextmanager
def _captured_stderr():
    """Capture what native code (ITK, GDCM) writes to file descriptor 2; yields a getter."""
    import sys
    import tempfile

    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):
        pass
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (embedded)
        yield lambda: ""
        return
    buffer = tempfile.TemporaryFile()
    text = {"value": None}
    os.dup2(buffer.fileno(), 2)

    def read() -> str:
        if text["value"] is None:
            os.dup2(saved, 2)
            buffer.seek(0)
            text["value"] = buffer.read(1 << 16).decode("utf-8", "replace")
        return text["value"]

    try:
        yield read
    finally:
        read()
        os.close(saved)
        buffer.close()


def _read_dicom_series(directory: Path):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    series_ids = reader.GetGDCMSeriesIDs(str(directory))
    if not series_ids:
        raise InvalidVolumeError(f"{directory}: no DICOM series found in this folder")
    files_per_series = [reader.GetGDCMSeriesFileNames(str(directory), sid) for sid in series_ids]
    files = max(files_per_series, key=len)
    if len(files) < 2:
        raise InvalidVolumeError(f"{directory}: the DICOM series has {len(files)} slice; a volume needs at least 2")
    reader.SetFileNames(files)
    return reader.Execute()


def write_volume(volume: Volume, path: PathLike, compress: bool = True) -> Path:
    """Write a volume atomically (temporary file, then rename).

    The format follows the ending (.nrrd, .nii, .nii.gz, .mha, .mhd); a path with no
    ending is taken as a folder for a DICOM series (:func:`write_dicom_series`).
    """
    import SimpleITK as sitk

    path = Path(path)
    suffix = _suffix(path)
    if suffix == "":
        return write_dicom_series(volume, path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidVolumeError(f"{path}: unsupported output type; use one of {', '.join(SUPPORTED_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".mhd":  # header + raw pair cannot be renamed atomically as one file
        sitk.WriteImage(volume.to_sitk(), str(path), compress)
        return path
    with atomic_output(path, suffix=suffix) as tmp:
        sitk.WriteImage(volume.to_sitk(), str(tmp), compress)
    return path


def write_dicom_series(volume: Volume, directory: PathLike, modality: str = "CT", series_description: str = "MicroCTLike") -> Path:
    """Write an integer volume as a DICOM series, one file per axial slice.

    Only 8/16-bit integer voxels are written (CT values as stored, rescale slope 1, intercept 0);
    convert floating point volumes first or use NRRD.
    """
    import time

    import SimpleITK as sitk

    directory = Path(directory)
    if volume.array.dtype not in (np.int16, np.uint16, np.uint8, np.int8):
        raise InvalidVolumeError(
            f"{directory}: DICOM output needs 8/16-bit integer voxels, got {volume.array.dtype}; write NRRD instead"
        )
    if directory.exists() and any(directory.iterdir()):
        raise InvalidVolumeError(f"{directory}: folder is not empty; refusing to mix DICOM series")
    directory.mkdir(parents=True, exist_ok=True)
    image = volume.to_sitk()
    stamp = time.strftime("%Y%m%d"), time.strftime("%H%M%S")
    uid_root = "1.2.826.0.1.3680043.2.1125." + str(int(time.time() * 1e3))
    direction = volume.direction_lps
    orientation = "\\".join(f"{v:.6f}" for v in (*direction[:, 0], *direction[:, 1]))
    sx, sy, sz = volume.spacing_xyz_mm
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(volume.shape_zyx[0]):
        slice_image = image[:, :, k]
        position = volume.index_zyx_to_lps(np.array([k, 0, 0], dtype=float))
        tags = {
            "0008|0060": modality,
            "0008|0020": stamp[0],
            "0008|0030": stamp[1],
            "0008|103e": series_description,
            "0020|000d": uid_root + ".1",
            "0020|000e": uid_root + ".2",
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{v:.6f}" for v in position),
            "0020|0037": orientation,
            "0028|0030": f"{sy:.6f}\\{sx:.6f}",
            "0018|0050": f"{sz:.6f}",
            "0028|1052": "0",
            "0028|1053": "1",
        }
        for key, value in tags.items():
            slice_image.SetMetaData(key, value)
        writer.SetFileName(str(directory / f"slice_{k:04d}.dcm"))
        writer.Execute(slice_image)
    return directory
