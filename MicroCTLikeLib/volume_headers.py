"""Check a volume file's header against its data before anything is allocated.

ITK allocates the voxel buffer a header asks for and only then finds out that the data
is missing: a NRRD claiming 1500^3 voxels over a 2 kB body allocates 6.7 GB before it fails.
:func:`precheck` reads only the header (NRRD/NHDR, MetaImage MHA/MHD, NIfTI-1 .nii/.nii.gz)
and refuses, in one line naming the file:

* an empty file;
* a header that is not one (wrong magic, unreadable sizes or types);
* a zero, negative or non-finite spacing (NRRD ``spacings``/``space directions``, MHA
  ``ElementSpacing``);
* more voxel bytes than the data can hold: raw data must be at least as large as the header
  says; gzip/zlib data cannot expand more than :data:`MAX_DEFLATE_RATIO` times;
* more voxel bytes than the memory ceiling (:func:`memory_ceiling_bytes`: 75 % of the
  machine's memory, or ``$MICROCTLIKE_MAX_VOLUME_GB``).

Formats it does not know pass through unchanged (ITK reads them as before).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .errors import InvalidVolumeError

#: Deflate's largest expansion is about 1032:1 (RFC 1951 blocks); headroom for the gzip frame.
MAX_DEFLATE_RATIO = 1100
ENV_CEILING = "MICROCTLIKE_MAX_VOLUME_GB"

_NRRD_TYPES = {
    1: ("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"),
    2: ("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort", "unsigned short",
        "unsigned short int", "uint16", "uint16_t"),
    4: ("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t", "float"),
    8: ("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64", "int64_t",
        "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t", "double"),
}
_NRRD_BYTES = {name: size for size, names in _NRRD_TYPES.items() for name in names}
_MET_BYTES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
              "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
              "MET_DOUBLE": 8}
_NIFTI_BYTES = {2: 1, 4: 2, 8: 4, 16: 4, 64: 8, 256: 1, 512: 2, 768: 4, 1024: 8, 1280: 8,
                32: 8, 128: 3, 1792: 16, 2304: 4, 1536: 16, 2048: 32}


def memory_ceiling_bytes() -> int:
    """Largest voxel buffer a read may allocate: ``$MICROCTLIKE_MAX_VOLUME_GB`` GB, else 75 % of RAM."""
    text = os.environ.get(ENV_CEILING)
    if text:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value) or value <= 0:
            raise InvalidVolumeError(f"${ENV_CEILING}={text!r}: must be a positive number of GB")
        return int(value * 1e9)
    try:
        return int(0.75 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 64 * 10**9


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB" if n >= 1e5 else f"{int(n)} bytes"


def _fail(path, what: str) -> None:
    raise InvalidVolumeError(f"{path}: {what}")


def _check_sizes(path, sizes: List[int], bytes_per_voxel: int, available: Optional[int], compressed: bool,
                 data_name: str) -> None:
    if not sizes or any(n < 1 for n in sizes):
        _fail(path, f"the header gives impossible sizes {sizes}; the file is damaged")
    count = math.prod(sizes)
    need = count * bytes_per_voxel
    shape = "x".join(str(n) for n in sizes)
    ceiling = memory_ceiling_bytes()
    if need > ceiling:
        _fail(path, f"the header claims {shape} voxels ({_gb(need)}), more than the memory ceiling of {_gb(ceiling)}; "
                    f"check the file, or raise the ceiling with {ENV_CEILING}=<GB>")
    if available is None:
        return
    if compressed and need > available * MAX_DEFLATE_RATIO + 4096:
        _fail(path, f"the header claims {shape} voxels ({_gb(need)}) but the compressed data ({_gb(available)} in "
                    f"{data_name}) cannot hold that many; the file is truncated or its header is damaged")
    if not compressed and need > available:
        _fail(path, f"the header claims {shape} voxels ({_gb(need)}) but {data_name} holds only {_gb(available)} "
                    "of data; the file is truncated or its header is damaged")


def _check_spacing(path, values: List[float], field: str) -> None:
    from .volume import VOXEL_MM_RANGE

    if any(not math.isfinite(v) or v <= 0 for v in values):
        _fail(path, f"the header's {field} {' '.join(f'{v:g}' for v in values)} is not three positive numbers "
                    "(zero, negative or missing voxel size); fix the spacing in the file (or in Slicer's Volume "
                    "Information) and save it again")
    low, high = VOXEL_MM_RANGE
    if any(not low <= v <= high for v in values):
        _fail(path, f"the header's {field} {' '.join(f'{v:g}' for v in values)} is outside {low:g}-{high:g} mm, "
                    "no CT voxel size; fix the spacing in the file (or in Slicer's Volume Information) and save it again")


def precheck(path) -> None:
    """Refuse a volume file whose header is damaged or asks for more than its data holds."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        _fail(path, f"cannot be read ({error.strerror or error})")
    if size == 0:
        _fail(path, "the file is empty (0 bytes); it was not written completely, choose another file")
    name = path.name.lower()
    try:
        if name.endswith((".nrrd", ".nhdr")):
            _precheck_nrrd(path, size)
        elif name.endswith((".mha", ".mhd")):
            _precheck_meta(path, size)
        elif name.endswith((".nii", ".nii.gz")):
            _precheck_nifti(path, size)
    except InvalidVolumeError:
        raise
    except (OSError, ValueError, struct.error, EOFError, zlib.error) as error:
        _fail(path, f"the header cannot be read ({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
                    "the file is damaged")


# ---------------------------------------------------------------------- NRRD
def _read_text_header(path: Path, limit: int = 1 << 20) -> Tuple[str, int]:
    """(header text, its length in bytes) up to the first empty line (or the whole file for a .nhdr)."""
    with open(path, "rb") as handle:
        head = handle.read(limit)
    end = head.find(b"\n\n")
    crlf = head.find(b"\r\n\r\n")
    if crlf >= 0 and (end < 0 or crlf < end):
        end, sep = crlf, 4
    else:
        sep = 2
    if end < 0:
        return head.decode("latin-1"), len(head)
    return head[:end].decode("latin-1"), end + sep


def _precheck_nrrd(path: Path, size: int) -> None:
    text, header_len = _read_text_header(path)
    lines = [line.strip() for line in text.splitlines()]
    if not lines or not lines[0].startswith("NRRD000"):
        _fail(path, "not a NRRD file (its first line is not 'NRRD000x'); the file is damaged or of another type")
    fields: Dict[str, str] = {}
    data_files: List[str] = []
    for index, line in enumerate(lines[1:], start=1):
        if not line or line.startswith("#"):
            continue
        if ":=" in line:
            continue  # key/value pairs
        if ":" not in line:
            _fail(path, f"line {index + 1} of the NRRD header is not 'field: value' ({line[:40]!r}); the header is damaged")
        key, value = line.split(":", 1)
        key = key.strip().lower()
        fields[key] = value.strip()
        if key in ("data file", "datafile") and value.strip().upper().startswith("LIST"):
            data_files = lines[index + 1:]
            break
    try:
        dimension = int(fields["dimension"])
        sizes = [int(v) for v in fields["sizes"].split()]
    except (KeyError, ValueError):
        _fail(path, "the NRRD header lacks readable 'dimension' and 'sizes' fields; the header is damaged")
    if len(sizes) != dimension:
        _fail(path, f"the NRRD header says dimension {dimension} but gives {len(sizes)} sizes; the header is damaged")
    type_name = " ".join(fields.get("type", "").lower().split())
    if type_name not in _NRRD_BYTES:
        _fail(path, f"the NRRD header gives an unknown voxel type {fields.get('type')!r}; the header is damaged")
    bytes_per_voxel = _NRRD_BYTES[type_name]
    _nrrd_spacing(path, fields, dimension)
    encoding = fields.get("encoding", "raw").lower()
    data_file = fields.get("data file", fields.get("datafile"))
    if data_files or (data_file and ("%" in data_file or data_file.upper().startswith("LIST"))):
        _check_sizes(path, sizes, bytes_per_voxel, None, False, "")
        return
    if data_file:
        target = Path(data_file) if os.path.isabs(data_file) else path.parent / data_file
        if not target.is_file():
            _fail(path, f"the data file {data_file!r} named by the header does not exist next to it")
        available, where = target.stat().st_size, f"the data file {data_file}"
    else:
        available, where = size - header_len, "the file"
    skip = fields.get("byte skip", "0")
    try:
        if int(skip) > 0:
            available -= int(skip)
    except ValueError:
        pass
    if encoding in ("raw",):
        _check_sizes(path, sizes, bytes_per_voxel, available, False, where)
    elif encoding in ("gzip", "gz"):
        _check_sizes(path, sizes, bytes_per_voxel, available, True, where)
    elif encoding in ("ascii", "text", "txt"):
        _check_sizes(path, sizes, 1, (available + 1) // 2, False, where)
    elif encoding == "hex":
        _check_sizes(path, sizes, bytes_per_voxel * 2, available, False, where)
    else:  # bzip2 can expand without a useful bound: only the memory ceiling applies
        _check_sizes(path, sizes, bytes_per_voxel, None, True, where)


def _nrrd_spacing(path: Path, fields: Dict[str, str], dimension: int) -> None:
    if "spacings" in fields:
        values = []
        for token in fields["spacings"].split():
            if token.lower() == "nan":
                continue  # a non-spatial axis
            try:
                values.append(float(token))
            except ValueError:
                values.append(float("nan"))
        _check_spacing(path, values, "spacings")
    if "space directions" in fields:
        lengths = []
        for token in fields["space directions"].split():
            if token.lower() == "none":
                continue
            try:
                vector = [float(v) for v in token.strip("()").split(",")]
            except ValueError:
                vector = [float("nan")]
            lengths.append(math.sqrt(sum(v * v for v in vector)) if all(math.isfinite(v) for v in vector) else float("nan"))
        _check_spacing(path, lengths, "space directions")


# ---------------------------------------------------------------------- MetaImage
def _precheck_meta(path: Path, size: int) -> None:
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    fields: Dict[str, str] = {}
    header_len = None
    offset = 0
    for raw in head.split(b"\n"):
        offset += len(raw) + 1
        line = raw.decode("latin-1").strip()
        if not line:
            continue
        if "=" not in line:
            _fail(path, f"not a MetaImage header (line {line[:40]!r} is not 'Key = Value'); the file is damaged")
        key, value = (part.strip() for part in line.split("=", 1))
        fields[key.lower()] = value
        if key.lower() == "elementdatafile":
            header_len = min(offset, size)
            break
    if header_len is None:
        _fail(path, "not a MetaImage header (no ElementDataFile line); the file is damaged or of another type")
    try:
        ndims = int(fields["ndims"])
        sizes = [int(v) for v in fields["dimsize"].split()]
    except (KeyError, ValueError):
        _fail(path, "the MetaImage header lacks readable NDims and DimSize; the header is damaged")
    if len(sizes) != ndims:
        _fail(path, f"the MetaImage header says NDims {ndims} but gives {len(sizes)} sizes; the header is damaged")
    element = fields.get("elementtype", "").upper()
    if element not in _MET_BYTES:
        _fail(path, f"the MetaImage header gives an unknown ElementType {fields.get('elementtype')!r}; the header is damaged")
    try:
        channels = int(fields.get("elementnumberofchannels", "1"))
    except ValueError:
        channels = 0
    if channels < 1:
        _fail(path, "the MetaImage header gives an impossible ElementNumberOfChannels; the header is damaged")
    if "elementspacing" in fields or "elementsize" in fields:
        try:
            values = [float(v) for v in fields.get("elementspacing", fields.get("elementsize", "")).split()]
        except ValueError:
            values = [float("nan")]
        _check_spacing(path, values or [float("nan")], "ElementSpacing")
    compressed = fields.get("compresseddata", "false").lower() == "true"
    data_file = fields["elementdatafile"]
    if data_file.upper() == "LOCAL":
        available, where = size - header_len, "the file"
    elif data_file.upper().startswith("LIST") or "%" in data_file:
        available, where = None, ""
    else:
        target = Path(data_file) if os.path.isabs(data_file) else path.parent / data_file
        if not target.is_file():
            _fail(path, f"the data file {data_file!r} named by the header does not exist next to it")
        available, where = target.stat().st_size, f"the data file {data_file}"
    _check_sizes(path, sizes + ([channels] if channels > 1 else []), _MET_BYTES[element], available, compressed, where)


# ---------------------------------------------------------------------- NIfTI-1
def _precheck_nifti(path: Path, size: int) -> None:
    gz = path.name.lower().endswith(".gz")
    try:
        if gz:
            with gzip.open(path, "rb") as handle:
                header = handle.read(352)
        else:
            with open(path, "rb") as handle:
                header = handle.read(352)
    except (OSError, EOFError, zlib.error):
        _fail(path, "is not a readable gzip file (damaged or truncated compression); the file is damaged")
    if len(header) < 348:
        _fail(path, f"too short for a NIfTI header ({len(header)} of 348 bytes); the file is truncated")
    for endian in "<>":
        if struct.unpack(endian + "i", header[:4])[0] == 348:
            break
    else:
        if struct.unpack("<i", header[:4])[0] == 540 or struct.unpack(">i", header[:4])[0] == 540:
            return  # NIfTI-2: left to ITK
        _fail(path, "not a NIfTI-1 file (its header does not start with 348); the file is damaged or of another type")
    dims = struct.unpack(endian + "8h", header[40:56])
    datatype = struct.unpack(endian + "h", header[70:72])[0]
    vox_offset = struct.unpack(endian + "f", header[108:112])[0]
    if not 1 <= dims[0] <= 7:
        _fail(path, f"the NIfTI header gives {dims[0]} dimensions (1-7 allowed); the header is damaged")
    if datatype not in _NIFTI_BYTES:
        _fail(path, f"the NIfTI header gives an unknown datatype {datatype}; the header is damaged")
    if not math.isfinite(vox_offset) or vox_offset < 0:
        _fail(path, f"the NIfTI header gives an impossible data offset {vox_offset}; the header is damaged")
    sizes = list(dims[1:dims[0] + 1])
    if gz:
        available, compressed = max(0, size - 18), True
    else:
        available, compressed = size - int(vox_offset), False
    _check_sizes(path, sizes, _NIFTI_BYTES[datatype], available, compressed, "the file")
