"""Generation engine: tiles agree with whole slices, geometry overlays the input, OOM fallback, cancel."""

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from MicroCTLikeLib.errors import CancelledError, InvalidParameterError  # noqa: E402
from MicroCTLikeLib.inference import generate_volume, parse_region, translate_slices  # noqa: E402
from MicroCTLikeLib.models import registry  # noqa: E402
from MicroCTLikeLib.tiling import plan_tiles, translate_tiled  # noqa: E402
from MicroCTLikeLib.volume import Volume  # noqa: E402

METADATA = {"normalisation": {"target_spacing_mm": 0.104, "mdct_window_hu": [-200.0, 1800.0],
                              "microct_window": [0.0, 1000.0]}, "model": {"name": "funit"}}


@pytest.fixture(scope="module")
def funit_generator():
    torch.manual_seed(0)
    model = registry.build_model(registry.model_config("funit", "tiny"))
    model.update_class_code(torch.randn(2, 1, 64, 64))
    return model.inference_generator().eval()


def _slice_with_structure(height=192, width=256, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.standard_normal((1, 1, height, width)).astype(np.float32) * 0.5
    image[..., : height // 3, :] += 1.0  # non-stationary: per-tile statistics would differ
    return torch.from_numpy(image)


def test_tile_cores_partition_the_slice():
    tiles = plan_tiles(96, 160, core_px=32, halo_px=16, multiple=16)
    cover = np.zeros((96, 160), int)
    for t in tiles:
        cover[t.core_y[0]:t.core_y[1], t.core_x[0]:t.core_x[1]] += 1
        assert t.window_y[1] - t.window_y[0] == 64 and t.window_x[1] - t.window_x[0] == 64
        assert t.window_y[0] <= t.core_y[0] and t.core_y[1] <= t.window_y[1]
    assert (cover == 1).all()
    with pytest.raises(InvalidParameterError, match="multiple of 16"):
        plan_tiles(100, 160, core_px=32, halo_px=16, multiple=16)


def test_tiled_pass_equals_the_whole_slice_pass(funit_generator):
    """Stated tolerance: 1e-4 in [-1, 1] units (float rounding) with a 96 px halo."""
    image = _slice_with_structure()
    with torch.no_grad():
        whole = funit_generator(image)
    tiled = translate_tiled(funit_generator, image, core_px=64, halo_px=96, multiple=16)
    assert float((tiled - whole).abs().max()) < 1e-4


def test_naive_tiles_would_show_seams(funit_generator):
    """The problem the tiled pass solves is real: per-tile statistics change the image."""
    image = _slice_with_structure()
    with torch.no_grad():
        whole = funit_generator(image)
        naive = torch.empty_like(whole)
        for t in plan_tiles(192, 256, core_px=64, halo_px=32, multiple=16):
            window = image[:, :, t.window_y[0]:t.window_y[1], t.window_x[0]:t.window_x[1]]
            out = funit_generator(window)
            cy, cx = t.core_y[0] - t.window_y[0], t.core_x[0] - t.window_x[0]
            naive[:, :, t.core_y[0]:t.core_y[1], t.core_x[0]:t.core_x[1]] = \
                out[:, :, cy:cy + t.core_y[1] - t.core_y[0], cx:cx + t.core_x[1] - t.core_x[0]]
    assert float((naive - whole).abs().max()) > 0.05


def _mdct_volume(shape=(3, 40, 48)):
    rng = np.random.default_rng(1)
    array = rng.integers(-100, 1500, size=shape).astype(np.int16)
    a = np.deg2rad(10)
    direction = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return Volume(array, spacing_xyz_mm=(0.195, 0.195, 0.1), origin_lps_mm=(-20.0, 5.0, 100.0),
                  direction_lps=direction, metadata={"source": "test"})


def test_output_geometry_overlays_the_input(funit_generator):
    mdct = _mdct_volume()
    out, report = generate_volume(mdct, funit_generator, METADATA, device="cpu")
    assert out.spacing_xyz_mm == pytest.approx((0.104, 0.104, 0.1))
    assert out.shape_zyx == (3, round(40 * 0.195 / 0.104), round(48 * 0.195 / 0.104))
    np.testing.assert_allclose(out.direction_lps, mdct.direction_lps)
    # outer pixel edges coincide: the corner of voxel (0,0,0) and the far corner match
    for volume_a, volume_b in ((out, mdct),):
        corner_a = volume_a.index_zyx_to_lps([0, -0.5, -0.5])
        corner_b = volume_b.index_zyx_to_lps([0, -0.5, -0.5])
        np.testing.assert_allclose(corner_a, corner_b, atol=1e-6)
    # slices stay at the MDCT's positions
    np.testing.assert_allclose(out.index_zyx_to_lps([2, 0, 0])[2], mdct.index_zyx_to_lps([2, 0, 0])[2])
    assert out.array.dtype == np.float32 and np.isfinite(out.array).all()
    assert 0.0 <= out.array.min() and out.array.max() <= 1000.0  # inside the micro-CT window
    assert report.mode == "whole" and report.n_slices == 3


def test_generation_follows_the_checkpoint_grid(funit_generator):
    """A checkpoint trained on 0.052 mm pixels generates on 0.052 mm pixels over the same field of view."""
    mdct = _mdct_volume()
    fine_metadata = {**METADATA, "normalisation": {**METADATA["normalisation"], "target_spacing_mm": 0.052}}
    fine, _ = generate_volume(mdct, funit_generator, fine_metadata, device="cpu")
    assert fine.spacing_xyz_mm == pytest.approx((0.052, 0.052, 0.1))
    assert fine.shape_zyx == (3, round(40 * 0.195 / 0.052), round(48 * 0.195 / 0.052))
    # both outer pixel corners coincide with the MDCT's (the far one within rounding of the pixel count)
    np.testing.assert_allclose(fine.index_zyx_to_lps([0, -0.5, -0.5]), mdct.index_zyx_to_lps([0, -0.5, -0.5]), atol=1e-6)
    np.testing.assert_allclose(fine.index_zyx_to_lps([2, fine.shape_zyx[1] - 0.5, fine.shape_zyx[2] - 0.5]),
                               mdct.index_zyx_to_lps([2, 40 - 0.5, 48 - 0.5]), atol=0.03)

def test_region_box_generates_only_that_part(funit_generator):
    mdct = _mdct_volume((6, 40, 48))
    centre = mdct.index_zyx_to_lps([2.5, 20, 24])
    box = (centre - [1.5, 1.5, 0.15], centre + [1.5, 1.5, 0.15])
    out, report = generate_volume(mdct, funit_generator, METADATA, device="cpu", region=box)
    assert report.region["kind"] == "box"
    assert out.shape_zyx[0] < 6 and out.shape_zyx[1] < 70
    # the box's centre is inside the output's field of view
    index = out.lps_to_index_zyx(centre)
    assert np.all(index > -0.5) and np.all(index < np.array(out.shape_zyx) - 0.5)
    assert parse_region("1,2,3,4,5,6") == ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    with pytest.raises(InvalidParameterError, match="six LPS numbers"):
        parse_region("1,2,3")


class _OutOfMemoryAbove(torch.nn.Module):
    """Stand-in generator that runs out of memory above a number of pixels per call."""

    def __init__(self, inner, max_pixels):
        super().__init__()
        self.inner, self.max_pixels = inner, max_pixels

    def forward(self, x):
        if x.shape[0] * x.shape[-1] * x.shape[-2] > self.max_pixels:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.inner(x)


def test_out_of_memory_retries_smaller_and_says_so(funit_generator):
    slices = _slice_with_structure(96, 96)[0].repeat(4, 1, 1).numpy()
    with torch.no_grad():
        expected = funit_generator(torch.from_numpy(slices[:, None])).numpy()[:, 0]
    notes = []
    out, mode = translate_slices(_OutOfMemoryAbove(funit_generator, 96 * 96 * 2), slices, device=torch.device("cpu"),
                                 batch_size=4, notes=notes)
    assert mode == "whole" and notes == ["CUDA out of memory: batch reduced to 2 slices"]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    notes = []
    out, mode = translate_slices(_OutOfMemoryAbove(funit_generator, 96 * 96 - 1), slices, device=torch.device("cpu"),
                                 batch_size=1, tile_core_px=32, tile_halo_px=0, notes=notes)
    assert mode == "tiles" and "switched to exact tiles" in notes[0]


def test_cancel_stops_promptly(funit_generator):
    cancel = threading.Event()
    calls = []

    def progress(done, total, message):
        calls.append(done)
        if done >= 1:
            cancel.set()

    slices = np.zeros((20, 64, 64), np.float32)
    with pytest.raises(CancelledError):
        translate_slices(funit_generator, slices, device=torch.device("cpu"), progress=progress, cancel=cancel)
    assert max(calls) == 1  # stopped right after the first slice, not after all 20
