"""The fine-grid recipe: the bundled recipe on the micro-CT's 0.052 mm pixels, the rest in mm unchanged."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_models_funit_context import recipe_against_bundled  # noqa: E402


def test_fine_recipe_is_the_bundled_recipe_on_half_the_pixel():
    bundled, fine, differ, others = recipe_against_bundled("bundled_funit_cpu_fine.yaml")
    assert fine["target_spacing_mm"] == pytest.approx(bundled["target_spacing_mm"] / 2) == pytest.approx(0.052)
    assert differ == {"forward_sigma_px"} and others == {"target_spacing_mm", "model_overrides"}
    # the MDCT blur of the forward term keeps its size in mm (sigma 0.255 mm, FWHM 0.6 mm)
    sigma_mm = {name: r["model_config"]["forward_sigma_px"] * r["target_spacing_mm"] for name, r in
                (("bundled", bundled), ("fine", fine))}
    assert sigma_mm["fine"] == pytest.approx(sigma_mm["bundled"], rel=0.03)
    assert fine["crop_px"] == bundled["crop_px"]  # same pixels per step: about the bundled cost

