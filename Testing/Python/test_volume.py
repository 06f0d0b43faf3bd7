"""Volume model: geometry maps, file round-trips in every format, clear errors."""

import os

import numpy as np
import pytest

from MicroCTLikeLib.errors import InvalidVolumeError, MicroCTLikeError
from MicroCTLikeLib.volume import Volume, read_volume, write_volume


def _oblique_direction(angle_deg=20.0):
    a = np.deg2rad(angle_deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


@pytest.fixture
def volume():
    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 2000, size=(5, 6, 7)).astype(np.int16)
    return Volume(array, spacing_xyz_mm=(0.195, 0.25, 0.1), origin_lps_mm=(-10.0, 5.0, 2.5),
                  direction_lps=_oblique_direction())


def test_index_physical_round_trip(volume):
    idx = np.array([[0, 0, 0], [4, 5, 6], [1.5, 2.25, 3.0]])
    lps = volume.index_zyx_to_lps(idx)
    np.testing.assert_allclose(lps[0], volume.origin_lps_mm)
    np.testing.assert_allclose(volume.lps_to_index_zyx(lps), idx, atol=1e-12)
    # one step along x moves by spacing_x along the first direction column
    step = volume.index_zyx_to_lps([0, 0, 1]) - volume.index_zyx_to_lps([0, 0, 0])
    np.testing.assert_allclose(step, 0.195 * volume.direction_lps[:, 0])


@pytest.mark.parametrize("name", ["v.nrrd", "v.nii.gz", "v.nii", "v.mha", "dicom"])
def test_file_round_trip_keeps_voxels_and_geometry(tmp_path, volume, name):
    path = write_volume(volume, tmp_path / name)
    back = read_volume(path)
    np.testing.assert_array_equal(back.array, volume.array)
    assert back.same_geometry(volume, tol_mm=1e-4)
    assert not list(tmp_path.glob(".*mctl-*")), "atomic write left a temporary file"
    if path.is_file():  # an ordinary file, readable by others as open() would make it (not mkstemp's 0600)
        umask = os.umask(0)
        os.umask(umask)
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize(
    "array, kwargs, message",
    [
        (np.zeros((4, 4)), {}, "3-D"),
        (np.zeros((0, 4, 4)), {}, "empty"),
        (np.zeros((2, 2, 2)), {"spacing_xyz_mm": (1, 0, 1)}, "spacing"),
        (np.zeros((2, 2, 2)), {"spacing_xyz_mm": (1, -1, 1)}, "spacing"),
        (np.zeros((2, 2, 2)), {"direction_lps": np.zeros((3, 3))}, "direction"),
    ],
)
def test_bad_geometry_is_refused(array, kwargs, message):
    with pytest.raises(InvalidVolumeError, match=message):
        Volume(array, **kwargs)


def test_nan_volume_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "nan.nrrd"
    write_volume(Volume(np.full((3, 3, 3), np.nan, np.float32)), path)
    with pytest.raises(InvalidVolumeError, match=r"nan\.nrrd.*NaN"):
        read_volume(path)


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "broken.nrrd"
    bad.write_bytes(b"this is not an image")
    with pytest.raises(MicroCTLikeError, match="broken.nrrd"):
        read_volume(bad)
    with pytest.raises(InvalidVolumeError, match="no such file"):
        read_volume(tmp_path / "absent.nii.gz")
    picture = tmp_path / "photo.png"
    picture.write_bytes(b"x")
    with pytest.raises(InvalidVolumeError, match="unsupported"):
        read_volume(picture)


def test_two_dimensional_file_is_refused(tmp_path):
    import SimpleITK as sitk

    path = tmp_path / "flat.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5), np.int16)), str(path))
    with pytest.raises(InvalidVolumeError, match="3-D"):
        read_volume(path)
