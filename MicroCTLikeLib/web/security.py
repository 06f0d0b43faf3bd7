"""The checks every request, upload and file choice of the web front-end passes.

Safe by default: the server listens on loopback unless told otherwise, and a non-loopback
bind needs an access token; uploads are size-limited and written only into the session's
own temporary folder under names the server chooses (the browser's file name is never a
path); a data file is opened only when its name is one the server itself listed from
``--data``; a DICOM zip is unpacked member by member into flat server-chosen names with
limits on count and unpacked size.

Standard library only (no trame, no VTK), so these rules are tested on their own.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import zipfile
from pathlib import Path
from typing import List, Optional

from ..errors import InvalidParameterError, MicroCTLikeError

#: Volume files offered from ``--data`` and accepted as uploads (a .zip is a DICOM series).
VOLUME_SUFFIXES = (".nrrd", ".nii", ".nii.gz", ".mha")
UPLOAD_SUFFIXES = VOLUME_SUFFIXES + (".zip",)
#: Default upload limit (bytes); ``microctlike web --max-upload-mb`` changes it.
DEFAULT_MAX_UPLOAD_BYTES = 512 * 1024 * 1024
#: A DICOM zip may hold at most this many members and unpack to at most this factor of the limit.
MAX_ZIP_MEMBERS = 5000
ZIP_UNPACK_FACTOR = 4
#: At most this many files are listed from ``--data``.
MAX_LISTED_FILES = 1000

TOKEN_COOKIE = "microctlike_token"


class UploadError(MicroCTLikeError, ValueError):
    """An upload was refused (too large, unsupported type, unsafe archive)."""


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: Optional[str]) -> None:
    """Refuse a non-loopback bind without a token (the page would be open to the network)."""
    if not is_loopback_host(host) and not token:
        raise InvalidParameterError(
            f"--host {host} listens beyond this machine: give --token SECRET (or --token auto to generate one)"
        )
    if token is not None and len(token) < 16:
        raise InvalidParameterError("--token must be at least 16 characters long")


def new_token() -> str:
    """A random URL-safe access token (192 bits)."""
    return secrets.token_urlsafe(24)


def token_matches(given: Optional[str], expected: Optional[str]) -> bool:
    """Constant-time comparison; no expected token means no token is needed."""
    if not expected:
        return True
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def volume_suffix(name: str) -> str:
    """The file ending that decides how a file is read (``.nii.gz`` is one ending)."""
    lower = name.lower()
    return ".nii.gz" if lower.endswith(".nii.gz") else os.path.splitext(lower)[1]


def list_data_files(data_dir: Optional[Path]) -> List[str]:
    """Relative POSIX names of the volume files under ``data_dir`` (links leading outside are left out)."""
    if data_dir is None:
        return []
    root = Path(data_dir).resolve()
    names: List[str] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if volume_suffix(name) not in VOLUME_SUFFIXES:
                continue
            path = Path(directory) / name
            try:
                path.resolve().relative_to(root)
            except ValueError:
                continue
            names.append(path.relative_to(root).as_posix())
            if len(names) >= MAX_LISTED_FILES:
                return sorted(names)
    return sorted(names)


def resolve_data_file(data_dir: Optional[Path], name: str, listed: List[str]) -> Path:
    """The path of a data file the browser chose, accepted only when the server listed it."""
    if data_dir is None or name not in listed:
        raise InvalidParameterError(f"{name!r} is not one of the files offered from the data folder")
    root = Path(data_dir).resolve()
    path = (root / name).resolve()
    path.relative_to(root)  # listed names lie inside; checked again in case the folder changed
    return path


def upload_target(session_dir: Path, filename: str, number: int) -> Path:
    """Where an upload is written: ``session_dir/upload-<number><ending>``; the browser's name is not used."""
    suffix = volume_suffix(filename or "")
    if suffix not in UPLOAD_SUFFIXES:
        raise UploadError(
            f"{filename!r}: unsupported upload; send one of {', '.join(UPLOAD_SUFFIXES)} (a .zip holds a DICOM series)"
        )
    return Path(session_dir) / f"upload-{int(number)}{suffix}"


def extract_dicom_zip(zip_path: Path, destination: Path, *, max_unpacked_bytes: int,
                      max_members: int = MAX_ZIP_MEMBERS) -> Path:
    """Unpack a DICOM zip into ``destination`` as flat numbered files; return the folder.

    Member names are never used as paths (no traversal, no links); directories and
    ``__MACOSX`` entries are skipped; the member count and the unpacked size are limited
    (a zip bomb is refused before it fills the disk).
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise UploadError(f"the uploaded .zip cannot be read: {error}") from None
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=False)
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and "__MACOSX" not in m.filename]
        if not members:
            raise UploadError("the uploaded .zip holds no files")
        if len(members) > max_members:
            raise UploadError(f"the uploaded .zip holds {len(members)} files; at most {max_members} are accepted")
        declared = sum(m.file_size for m in members)
        if declared > max_unpacked_bytes:
            raise UploadError(f"the uploaded .zip unpacks to {declared} bytes; at most {max_unpacked_bytes} are accepted")
        written = 0
        for index, member in enumerate(members):
            target = destination / f"{index:05d}.dcm"
            with archive.open(member) as source, open(target, "wb") as sink:
                while True:
                    chunk = source.read(1 << 20)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > max_unpacked_bytes:  # sizes in the header can lie
                        raise UploadError(f"the uploaded .zip unpacks to more than {max_unpacked_bytes} bytes")
                    sink.write(chunk)
    return destination
