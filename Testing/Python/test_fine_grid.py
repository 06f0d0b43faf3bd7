"""The fine-grid recipe: the bundled recipe on the micro-CT's 0.052 mm pixels, the rest in mm unchanged."""

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_models_funit_context import recipe_against_bundled  # noqa: E402

from MicroCTLikeLib.inference import generate_volume  # noqa: E402
from MicroCTLikeLib.models import registry  # noqa: E402
from MicroCTLikeLib.volume import Volume  # noqa: E402


def test_fine_recipe_is_the_bundled_recipe_on_half_the_pixel():
    bundled, fine, differ, others = recipe_against_bundled("bundled_funit_cpu_fine.yaml")
    assert fine["target_spacing_mm"] == pytest.approx(bundled["target_spacing_mm"] / 2) == pytest.approx(0.052)
    assert differ == {"forward_sigma_px"} and others == {"target_spacing_mm", "model_overrides"}
    # the MDCT blur of the forward term keeps its size in mm (sigma 0.255 mm, FWHM 0.6 mm)
    sigma_mm = {name: r["model_config"]["forward_sigma_px"] * r["target_spacing_mm"] for name, r in
                (("bundled", bundled), ("fine", fine))}
    assert sigma_mm["fine"] == pytest.approx(sigma_mm["bundled"], rel=0.03)
    assert fine["crop_px"] == bundled["crop_px"]  # same pixels per step: about the bundled cost


def test_generation_follows_the_checkpoint_grid():
    """A checkpoint trained on 0.052 mm pixels generates on 0.052 mm pixels over the same field of view."""
    torch.manual_seed(0)
    model = registry.build_model(registry.model_config("funit", "tiny"))
    model.update_class_code(torch.randn(2, 1, 64, 64))
    generator = model.inference_generator().eval()
    rng = np.random.default_rng(0)
    mdct = Volume(rng.integers(-100, 1500, size=(2, 32, 40)).astype(np.int16), spacing_xyz_mm=(0.195, 0.195, 0.1),
                  origin_lps_mm=(-20.0, 5.0, 100.0), direction_lps=np.eye(3), metadata={})
    outputs = {}
    for spacing in (0.104, 0.052):
        metadata = {"normalisation": {"target_spacing_mm": spacing, "mdct_window_hu": [-200.0, 1800.0],
                                      "microct_window": [0.0, 1000.0]}, "model": {"name": "funit"}}
        outputs[spacing], _ = generate_volume(mdct, generator, metadata, device="cpu")
    coarse, fine = outputs[0.104], outputs[0.052]
    assert fine.spacing_xyz_mm == pytest.approx((0.052, 0.052, 0.1))
    assert fine.shape_zyx == (2, round(32 * 0.195 / 0.052), round(40 * 0.195 / 0.052))
    for index in ([0, -0.5, -0.5], [1, fine.shape_zyx[1] - 0.5, fine.shape_zyx[2] - 0.5]):
        far = [index[0], *(coarse.shape_zyx[a] - 0.5 if index[a] > 0 else -0.5 for a in (1, 2))]
        np.testing.assert_allclose(fine.index_zyx_to_lps(index), coarse.index_zyx_to_lps(far), atol=0.03)
