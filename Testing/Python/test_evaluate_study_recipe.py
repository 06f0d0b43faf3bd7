"""The measurement recipe of the cohort report (``microctlike evaluate --cohort ... --recipe``):
it reaches every volume's measurement, the report names it, and the per-case cache never
serves one recipe's numbers to a run with the other.

A one-specimen simulated cohort of the tiny preset (a 10 x 8 x 4 mm block, too small for the
study's 15 mm VOIs, so two small VOIs at its centre stand in for the placement), the tiny
FUNIT of conftest, the whole volume generated, CPU.
"""

import json

import numpy as np
import pytest

from MicroCTLikeLib.evaluate.cohort import MDCT, MICROCT, TRUTH

pytest.importorskip("torch")


class _Placement:
    def __init__(self, vois):
        self.vois = tuple(vois)

    def to_dict(self):
        return {"vois": [v.to_dict() for v in self.vois]}


def _central_vois(volume):
    from MicroCTLikeLib.voi import CylinderVOI

    centre = volume.index_zyx_to_lps((np.array(volume.shape_zyx, float) - 1) / 2)
    return _Placement(CylinderVOI(tuple(centre + np.array([0.0, 0.0, dz])), diameter_mm=3.0, height_mm=1.0, name=name)
                      for name, dz in (("superior", 0.6), ("inferior", -0.6)))


@pytest.fixture(scope="module")
def simulated_cohort(tmp_path_factory):
    from MicroCTLikeLib.simulate import write_cohort

    out = tmp_path_factory.mktemp("recipe_cohort") / "sim"
    write_cohort(out, 1, 5, "tiny")
    return out


def _volumes(results):
    """{(case, label): [per VOI]} of every measured volume of a results dict."""
    out = {}
    for case in results["cases"]:
        for label, entries in case["reference"]["measurements"].items():
            out[(case["case"], label)] = entries
        for name, record in case["models"].items():
            out[(case["case"], name)] = record["measurements"]
    return out


def _run(cohort, checkpoint, out, recipe, messages):
    from MicroCTLikeLib.evaluate.cohort import evaluate_study

    return evaluate_study(cohort, {"funit": str(checkpoint)}, out, cases=["case_000"], device="cpu", region="whole",
                          recipe=recipe, log=messages.append)


def test_recipe_reaches_the_measurements_and_the_cache_is_per_recipe(simulated_cohort, tiny_funit_checkpoint, tmp_path,
                                                                    one_torch_thread, monkeypatch):
    import MicroCTLikeLib.voi
    from MicroCTLikeLib.evaluate.study import write_study_report

    monkeypatch.setattr(MicroCTLikeLib.voi, "place_standard_vois", _central_vois)
    tiny_cohort = simulated_cohort

    out = tmp_path / "report"
    first: list = []
    study = _run(tiny_cohort, tiny_funit_checkpoint, out, "study", first)
    assert study["measurement_recipe"] == "study"
    assert not any("cached" in m for m in first)

    second: list = []
    gold = _run(tiny_cohort, tiny_funit_checkpoint, out, "gold", second)
    # (2) the other recipe measures again: nothing of the study run is reused
    assert not any("cached" in m for m in second), second
    assert gold["measurement_recipe"] == "gold" and gold["measurement"] == {"threshold": "midpoint", "voxel_mm": 0.052}

    # (1) the recipe reaches every volume's measurement
    study_volumes, gold_volumes = _volumes(study), _volumes(gold)
    assert set(study_volumes) == set(gold_volumes) and {label for _, label in gold_volumes} >= {MDCT, MICROCT, TRUTH, "funit"}
    for key in gold_volumes:
        for s, g in zip(study_volumes[key], gold_volumes[key]):
            if key[1] == TRUTH:  # a binary volume is not thresholded
                assert s["threshold_method"] == g["threshold_method"] == "binary"
            else:
                assert s["threshold_method"] == "isodata" and g["threshold_method"] == "midpoint", key
                assert g["pixel_width_mm"] == pytest.approx(0.052), key
    mdct = [(s["pixel_width_mm"], s["threshold"], g["threshold"])
            for s, g in zip(study_volumes[(gold["cases"][0]["case"], MDCT)], gold_volumes[(gold["cases"][0]["case"], MDCT)])]
    assert all(width > 0.06 for width, _, _ in mdct)  # study: the MDCT's own (coarse) voxels
    assert any(s != g for s_list in zip(study_volumes.values(), gold_volumes.values())
               for s, g in ((a["threshold"], b["threshold"]) for a, b in zip(*s_list)))

    # the same recipe again is served from the cache; back to study measures again
    third: list = []
    again = _run(tiny_cohort, tiny_funit_checkpoint, out, "gold", third)
    assert any("reference cached" in m for m in third) and any("funit cached" in m for m in third)
    assert _volumes(again) == gold_volumes
    fourth: list = []
    back = _run(tiny_cohort, tiny_funit_checkpoint, out, "study", fourth)
    assert not any("cached" in m for m in fourth)
    assert _volumes(back) == study_volumes

    # the report names the recipe: JSON, the Markdown tables' captions, HTML
    write_study_report(gold, out, figures=False)
    summary = json.loads((out / "report.json").read_text())
    assert summary["measurement_recipe"] == "gold"
    metric_tables = [t for t in summary["tables"] if t["name"].startswith(("table3", "table4", "headline"))]
    assert metric_tables and all(any("Measurement recipe: gold" in n for n in t["notes"]) for t in metric_tables)
    assert "*Measurement recipe: gold" in (out / "report.md").read_text()
    assert "Measurement recipe: gold" in (out / "report.html").read_text()
    assert json.loads((out / "results.json").read_text())["measurement_recipe"] == "gold"


def test_cli_recipe_help_and_unknown_recipe(tmp_path):
    import argparse

    from MicroCTLikeLib.commands import evaluate
    from MicroCTLikeLib.evaluate.cohort import evaluate_study
    from MicroCTLikeLib.errors import InvalidParameterError

    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    action = next(a for a in parser._actions if a.dest == "recipe")
    assert action.default is None and "with --data:" not in action.help and "study with --cohort" in action.help
    with pytest.raises(InvalidParameterError, match="unknown measurement recipe"):
        evaluate_study(tmp_path, {"funit": "bundled"}, tmp_path / "out", recipe="otsu")
