"""``microctlike measure`` run as a user runs it (subprocess), checked against BoneJ's own
numbers on analytic phantoms and against the library called directly."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from MicroCTLikeLib.morphometry import measure_trabecular
from MicroCTLikeLib.voi import CylinderVOI, cylinder_mask, place_standard_vois
from MicroCTLikeLib.volume import Volume, read_volume, write_volume

BONEJ = Path("/work/shared/testdata/bonej")
REPO = Path(__file__).resolve().parents[2]


def _run(*args):
    return subprocess.run([sys.executable, "-m", "MicroCTLikeLib", "measure", *map(str, args)],
                          capture_output=True, text=True, encoding="utf-8", errors="replace", cwd=REPO, timeout=300)


def _json(*args):
    done = _run(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _case(name):
    manifest = json.loads((BONEJ / "manifest.json").read_text())
    return next(c for c in manifest["thickness_cases"] if c["name"] == name)


@pytest.mark.parametrize("t", [3, 4, 5, 8])
def test_whole_stack_plates_match_bonej(tmp_path, t):
    name = f"plates_t{t}_s{ {3: 12, 4: 12, 5: 12, 8: 16}[t] }_borderpad"
    case = _case(name)
    spacing = 0.05
    path = write_volume(Volume(np.load(BONEJ / case["file"])["vol"], (spacing,) * 3), tmp_path / f"{name}.nrrd")
    out = _json(path, "--voi", "whole")
    # a t-voxel plate reads 2*ceil(t/2) voxels in BoneJ (SCIENCE.md section 2)
    assert out["tb_th_mm"] == pytest.approx(2 * math.ceil(t / 2) * spacing, rel=1e-6)
    assert out["tb_th_mm"] == pytest.approx(case["bonej"]["Tb.Th"]["mean"] * spacing, rel=1e-6)
    assert out["tb_sp_mm"] == pytest.approx(case["bonej"]["Tb.Sp"]["mean"] * spacing, rel=1e-6)
    assert out["tb_sp_sd_mm"] == pytest.approx(case["bonej"]["Tb.Sp"]["sd"] * spacing, rel=1e-5, abs=1e-9)
    assert out["tb_sp_max_mm"] == pytest.approx(case["bonej"]["Tb.Sp"]["max"] * spacing, rel=1e-6)
    assert out["bv_tv"] == pytest.approx(case["bvtv"], rel=1e-12)
    assert out["threshold_method"] == "binary" and out["tb_sp_policy"] == "whole"
    assert out["voi"]["shape"] == "whole"


@pytest.fixture(scope="module")
def sheets(tmp_path_factory):
    data = np.load(BONEJ / "random" / "rand_sheets_48x56x64.npz")["vol"]
    volume = Volume(data, (0.052,) * 3, origin_lps_mm=(-1.0, 2.0, 0.5))
    return write_volume(volume, tmp_path_factory.mktemp("sheets") / "sheets.nrrd"), volume


@pytest.mark.parametrize("policy", ["margin", "clear_outside", "outside_bone"])
def test_cylinder_voi_in_ras_matches_library(sheets, policy):
    path, volume = sheets
    centre_lps = volume.centre_lps_mm()
    centre_ras = (-centre_lps[0], -centre_lps[1], centre_lps[2])
    spec = "cylinder:" + ",".join(f"{v:.6f}" for v in (*centre_ras, 2.4, 1.8))
    out = _json(path, "--voi", spec, "--tb-sp-policy", policy, "--margin-mm", "0.4")
    voi = CylinderVOI(tuple(centre_lps), (0, 0, 1), 2.4, 1.8)
    direct = measure_trabecular(volume.array, spacing_xyz_mm=volume.spacing_xyz_mm,
                                voi_mask=cylinder_mask(volume, voi), tb_sp_policy=policy, margin_mm=0.4)
    for key in ("bv_tv", "tb_th_mm", "tb_th_sd_mm", "tb_th_max_mm", "tb_sp_mm", "tb_sp_sd_mm", "tb_sp_max_mm"):
        assert out[key] == pytest.approx(getattr(direct, key), rel=1e-9), key
    assert out["tb_sp_policy"] == policy
    np.testing.assert_allclose(out["voi"]["centre_lps_mm"], centre_lps, atol=1e-5)
    assert out["voi"]["diameter_mm"] == 2.4 and out["voi"]["height_mm"] == 1.8


def test_maps_out_and_table(sheets, tmp_path):
    path, volume = sheets
    centre_lps = volume.centre_lps_mm()
    spec = f"cylinder:{-centre_lps[0]},{-centre_lps[1]},{centre_lps[2]},2.0,1.5"
    out = _json(path, "--voi", spec, "--maps-out", tmp_path / "maps")
    maps = {key: read_volume(tmp_path / "maps" / f"cylinder_{key}.nrrd") for key in ("tb_th_mm", "tb_sp_mm", "voi_mask")}
    for key in ("tb_th_mm", "tb_sp_mm"):
        values = maps[key].array.astype(np.float64)
        assert values[values > 0].mean() == pytest.approx(out[key], rel=1e-6)  # 0 = no value
        assert maps[key].same_geometry(maps["voi_mask"])
    assert maps["voi_mask"].array.sum() == out["voi_voxel_count"]
    # the maps sit where the VOI is: their mask voxels are the cylinder's voxels of the full volume
    centre = maps["voi_mask"].index_zyx_to_lps(np.argwhere(maps["voi_mask"].array).mean(axis=0))
    np.testing.assert_allclose(centre, centre_lps, atol=0.03)
    table = _run(path, "--voi", spec)
    assert table.returncode == 0, table.stderr
    assert "BV/TV" in table.stdout and f"{out['bv_tv']:.4f}" in table.stdout and f"{out['tb_sp_mm']:.4f}" in table.stdout


def test_standard_vois_on_a_phantom_body(tmp_path):
    from test_voi_placement import body_phantom

    volume, truth = body_phantom(body_rot_deg=3.0, spacing_xyz_mm=(0.3, 0.3, 0.3), seed=2)
    path = write_volume(volume, tmp_path / "body.nrrd")
    out = _json(path, "--voi", "standard", "--threshold", "otsu")
    assert [v["name"] for v in out["vois"]] == ["superior", "inferior"]
    placement = place_standard_vois(read_volume(path))
    for entry, voi in zip(out["vois"], placement.vois):
        np.testing.assert_allclose(entry["voi"]["centre_lps_mm"], voi.centre_lps_mm, atol=1e-5)
        direct = measure_trabecular(volume.array, spacing_xyz_mm=volume.spacing_xyz_mm,
                                    voi_mask=cylinder_mask(volume, voi), threshold="otsu")
        assert entry["bv_tv"] == pytest.approx(direct.bv_tv, rel=1e-12)
        assert entry["tb_th_mm"] == pytest.approx(direct.tb_th_mm, rel=1e-9)
        assert entry["tb_sp_mm"] == pytest.approx(direct.tb_sp_mm, rel=1e-9)
        assert entry["threshold_method"] == "otsu" and entry["tb_sp_policy"] == "margin"
    centre = np.mean([v["voi"]["centre_lps_mm"] for v in out["vois"]], axis=0)
    assert abs((centre - truth["centre_mid"]) @ truth["ap"]) < 0.3
    assert "anterior_edge_lps_mm" in out["placement"]


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["missing.nrrd"], 1, "no such file"),
        (["{sheets}", "--voi", "cylinder:0,0,0,15,5"], 1, "not entirely inside"),
        (["{sheets}", "--voi", "standard"], 1, "no vertebral body"),  # a sponge cube, no body
        (["{sheets}", "--voi", "cylinder:1,2,3"], 2, "invalid VOI"),
        (["{sheets}", "--voi", "box"], 2, "invalid VOI"),
        (["{sheets}", "--threshold", "300"], 2, "invalid threshold"),
        (["{sheets}", "--tb-sp-policy", "nonsense"], 2, "invalid choice"),
        (["{sheets}", "--margin-mm", "-1", "--voi", "cylinder:-0.638,-3.43,1.722,1,1"], 2, "margin-mm"),  # parse-time range
    ],
)
def test_bad_input_exits_cleanly(sheets, args, code, message):
    path, _ = sheets
    done = _run(*[a.replace("{sheets}", str(path)) for a in args])
    assert done.returncode == code, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_anisotropic_stack_is_calibrated_by_pixel_width_and_warned(tmp_path):
    # BoneJ calibrates by the x spacing only; the CLI says so once, without a Python warning line.
    case = _case("plates_t5_s12_borderpad")
    volume = Volume(np.load(BONEJ / case["file"])["vol"], (0.05, 0.05, 0.1))
    path = write_volume(volume, tmp_path / "aniso.nrrd")
    done = _run(path, "--voi", "whole", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["tb_th_mm"] == pytest.approx(6 * 0.05, rel=1e-6)
    assert len(out["warnings"]) == 1 and "anisotropic" in out["warnings"][0]
    assert done.stderr.count("microctlike: warning: anisotropic") == 1 and "UserWarning" not in done.stderr
