"""Generation in orthogonal views: each view's slices are the right planes, back on the output grid."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from MicroCTLikeLib.errors import InvalidParameterError  # noqa: E402
from MicroCTLikeLib.inference import generate_volume, parse_views, resample_slices_linear  # noqa: E402
from MicroCTLikeLib.train.data import normalise  # noqa: E402
from MicroCTLikeLib.volume import Volume  # noqa: E402

WINDOW_HU = [-1000.0, 1000.0]
METADATA = {"normalisation": {"target_spacing_mm": 0.2, "mdct_window_hu": WINDOW_HU, "microct_window": [-1.0, 1.0]},
            "model": {"name": "test"}}


class _Gradient(torch.nn.Module):
    """A 'generator' returning a forward difference of each slice along rows (H) or columns (W).

    Which array axis a view's rows and columns are is then read off the output.
    """

    size_multiple = 1
    context_slices = 0

    def __init__(self, axis: int):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        difference = torch.diff(x, dim=self.axis, append=x.narrow(self.axis, x.shape[self.axis] - 1, 1))
        return difference


def _ramp_volume(axis: int, slice_mm: float = 0.2):
    """(z, y, x) = (20, 16, 12) voxels of 0.2 mm in-plane, HU rising 10 per voxel along ``axis``."""
    index = np.indices((20, 16, 12))[axis].astype(np.float64)
    return Volume((index * 10.0).astype(np.float32), spacing_xyz_mm=(0.2, 0.2, slice_mm))


def _interior(array):
    return array[2:-2, 2:-2, 2:-2]


@pytest.mark.parametrize("ramp_axis, view, rows_or_columns, expected", [
    # axial slices are (y, x) planes; coronal slices (z, x); sagittal slices (z, y)
    (2, "axial", -1, 1.0), (1, "axial", -2, 1.0), (0, "axial", -2, 0.0),
    (2, "coronal", -1, 1.0), (0, "coronal", -2, 1.0), (1, "coronal", -2, 0.0),
    (1, "sagittal", -1, 1.0), (0, "sagittal", -2, 1.0), (2, "sagittal", -2, 0.0),
])
def test_each_view_translates_its_own_planes(ramp_axis, view, rows_or_columns, expected):
    mdct = _ramp_volume(ramp_axis)
    out, report = generate_volume(mdct, _Gradient(rows_or_columns), METADATA, device="cpu", views=(view,))
    step = 10.0 / (WINDOW_HU[1] - WINDOW_HU[0]) * 2.0  # one voxel of the ramp, normalised to [-1, 1]
    assert out.shape_zyx == mdct.shape_zyx and report.views == (view,)
    np.testing.assert_allclose(_interior(out.array), expected * step, atol=1e-5)


def test_views_are_averaged():
    mdct = _ramp_volume(2)  # a ramp along x: axial and coronal columns see it, sagittal columns do not
    out, report = generate_volume(mdct, _Gradient(-1), METADATA, device="cpu", views="all")
    step = 10.0 / (WINDOW_HU[1] - WINDOW_HU[0]) * 2.0
    np.testing.assert_allclose(_interior(out.array), 2.0 / 3.0 * step, atol=1e-5)
    assert report.views == ("axial", "coronal", "sagittal") and "averaged" in report.notes[-1]


def test_anisotropic_slices_go_through_the_in_plane_pixel_and_back():
    """0.5 mm slices: the coronal view translates 0.2 mm rows, the output keeps the MDCT's slices."""
    z = np.arange(9) * 0.5
    array = np.broadcast_to((z * 100.0)[:, None, None], (9, 10, 10)).astype(np.float32)  # 100 HU per mm
    mdct = Volume(array, spacing_xyz_mm=(0.2, 0.2, 0.5))
    out, _ = generate_volume(mdct, _Gradient(-2), METADATA, device="cpu", views=("coronal",))
    assert out.shape_zyx == (9, 10, 10) and out.spacing_xyz_mm[2] == pytest.approx(0.5)
    per_row = 100.0 * 0.2 / (WINDOW_HU[1] - WINDOW_HU[0]) * 2.0  # the 0.2 mm rows' difference
    np.testing.assert_allclose(out.array[1:-2, 2:-2, 2:-2], per_row, atol=1e-5)


def test_identity_generator_returns_the_input_in_every_view():
    rng = np.random.default_rng(0)
    mdct = Volume(rng.uniform(-500, 500, (12, 14, 10)).astype(np.float32), spacing_xyz_mm=(0.2, 0.2, 0.2))
    identity = _Gradient(-1)
    identity.forward = lambda x: x
    out, _ = generate_volume(mdct, identity, METADATA, device="cpu", views="axial+coronal+sagittal")
    np.testing.assert_allclose(out.array, normalise(mdct.array, WINDOW_HU), atol=1e-5)


def test_resample_slices_linear_round_trip_and_ends():
    stack = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)  # 0..4 at 0.5 mm
    fine = resample_slices_linear(stack, 0.5, 0.2)
    assert fine.shape[0] == 11  # 0 .. 2.0 mm
    np.testing.assert_allclose(fine[:, 0, 0], np.arange(11) * 0.4, atol=1e-6)
    back = resample_slices_linear(fine, 0.2, 0.5, n_out=5)
    np.testing.assert_allclose(back, stack, atol=1e-6)


def test_views_are_checked():
    assert parse_views("all") == ("axial", "coronal", "sagittal")
    assert parse_views("sagittal+axial") == ("axial", "sagittal")
    for bad in ("", "axial+axial", "oblique", []):
        with pytest.raises(InvalidParameterError, match="views must be"):
            parse_views(bad)
    context = {**METADATA, "model": {"name": "funit", "config": {"context_slices": 1, "context_step_mm": 0.3}}}
    with pytest.raises(InvalidParameterError, match="context slices translates axial slices only"):
        generate_volume(_ramp_volume(0), _Gradient(-1), context, device="cpu", views="all")
