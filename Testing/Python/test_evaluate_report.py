"""Tables 1-4 and the report of a cohort evaluation, on synthetic per-case results (fast)."""

import json

import numpy as np
import pytest

from MicroCTLikeLib.evaluate.cohort import MDCT, MICROCT, TRUTH, parse_model_specs
from MicroCTLikeLib.evaluate.tables import all_tables
from MicroCTLikeLib.errors import InvalidParameterError


def entry(name, bv, th, sp):
    return {"voi_name": name, "bv_tv": bv, "tb_th_mm": th, "tb_sp_mm": sp}


def synthetic_results(n_cases=6, seed=0):
    rng = np.random.default_rng(seed)
    cases = []
    for c in range(n_cases):
        reference = {MDCT: [], MICROCT: [], TRUTH: []}
        models = {"funit": {"measurements": [], "ssim": {}, "ssim_mdct": {}}, "stargan": {"measurements": [], "ssim": {},
                                                                                        "ssim_mdct": {}}}
        for voi in ("superior", "inferior"):
            truth = np.array([rng.uniform(0.06, 0.25), rng.uniform(0.1, 0.22), rng.uniform(0.7, 1.3)])
            micro = truth * (1 + rng.normal(0, 0.03, 3))
            reference[TRUTH].append(entry(voi, *truth))
            reference[MICROCT].append(entry(voi, *micro))
            reference[MDCT].append(entry(voi, *(micro * 2.5 + rng.normal(0, 0.1, 3))))
            models["funit"]["measurements"].append(entry(voi, *(micro + rng.normal(0, 0.01, 3))))
            models["stargan"]["measurements"].append(entry(voi, *(micro * 0 + rng.uniform(0.1, 0.3, 3))))
        for name, level in (("funit", 0.5), ("stargan", 0.4)):
            models[name]["ssim"] = {"overall": level + rng.normal(0, 0.02), "cancellous": level + 0.1 + rng.normal(0, 0.02)}
            models[name]["ssim_mdct"] = {"overall": 0.2 + 0.01 * c, "cancellous": 0.21 + 0.01 * c}
        cases.append({"case": f"case_{c:03d}", "reference": {"measurements": reference, "warnings": []}, "models": models})
    info = {"funit": {"architecture": "funit", "preset": "small", "step": 100},
            "stargan": {"architecture": "stargan", "preset": "small", "step": 10}}
    return {"cohort": "synthetic", "split": "test", "models": info, "cases": cases, "fid": None,
            "fid_status": "FID not computed: no FID Inception weights given.",
            "similarity_recipe": {"mdct_window_hu": [-200, 1800], "microct_window": [-200, 2000], "ssim": "Wang",
                                  "overall": "all", "cancellous": "VOI boxes"}}


def test_headline_r2_and_icc_match_independent_computations():
    pg = pytest.importorskip("pingouin")
    import pandas as pd
    from scipy import stats

    results = synthetic_results()
    tables = {t["name"]: t for t in all_tables(results)["tables"]}
    head = tables["headline"]
    row = next(r for r in head["rows"] if r[0].startswith("FUNIT") and r[1] == MICROCT)
    funit = [e["bv_tv"] for c in results["cases"] for e in c["models"]["funit"]["measurements"]]
    micro = [e["bv_tv"] for c in results["cases"] for e in c["reference"]["measurements"][MICROCT]]
    assert row[2] == pytest.approx(stats.linregress(micro, funit).rvalue ** 2)
    n = len(funit)
    frame = pd.DataFrame({"t": np.tile(np.arange(n), 2), "r": np.repeat([0, 1], n), "s": funit + micro})
    icc = pg.intraclass_corr(frame, targets="t", raters="r", ratings="s").set_index("Type").loc["ICC(A,1)", "ICC"]
    assert row[5] == pytest.approx(icc)
    assert row[2] > 0.9 and row[5] > 0.9  # a faithful method
    star = next(r for r in head["rows"] if r[0].startswith("StarGAN") and r[1] == MICROCT)
    assert star[2] < 0.5  # output independent of the specimen
    truth_rows = [r for r in head["rows"] if r[1] == TRUTH]
    assert [r[0] for r in truth_rows] == [MDCT, "FUNIT (small width)", "StarGAN (small width)", MICROCT]
    assert head["notes"][0] == "n = 12 VOIs of 6 specimens."


def test_table1_is_mean_sd_over_specimens_and_tests_are_paired():
    results = synthetic_results()
    tables = {t["name"]: t for t in all_tables(results)["tables"]}
    t1 = tables["table1_similarity"]
    assert t1["columns"] == ["Metric", MDCT, "FUNIT (small width)", "StarGAN (small width)"]
    values = [c["models"]["funit"]["ssim"]["overall"] for c in results["cases"]]
    assert t1["rows"][0][2] == f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
    assert t1["rows"][1][1] == "n/a"  # FID not computed
    assert any("FID not computed" in n for n in t1["notes"])
    tests = tables["table1_tests"]["rows"]
    wilcoxon = next(r for r in tests if r[0] == "overall SSIM" and "FUNIT" in r[1] and "Wilcoxon" in r[1])
    assert wilcoxon[3] == pytest.approx(0.03125)  # 6 pairs, all the same sign: exact two-sided p = 2 / 2^6
    assert any(r[1].startswith("Friedman") for r in tests)


def test_report_files(tmp_path):
    pytest.importorskip("matplotlib")
    from MicroCTLikeLib.evaluate.study import write_study_report

    results = synthetic_results(4)
    written = write_study_report(results, tmp_path, command="microctlike evaluate --cohort X --out Y")
    for name in ("report.html", "report.md", "report.json", "results.json", "tables/table3_metrics.csv",
                 "tables/table4_agreement.csv", "tables/table1_similarity.csv", "figures/regression_vs_microct.png",
                 "figures/bland_altman_vs_microct.png", "figures/similarity_boxplots.png"):
        assert (tmp_path / name).is_file(), name
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html and "Table 4" in html and "FID not computed" in html
    assert "src='figures/" not in html  # self-contained
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["n_vois"] == 8 and len(written["figures"]) == 4
    import csv

    rows = list(csv.reader(open(tmp_path / "tables" / "table4_agreement.csv")))
    assert rows[0][4] == "ICC(A,1)" and len(rows) == 1 + 3 * 3 + 3 * 4  # (MDCT + 2 models) vs micro-CT, + micro-CT vs truth


def test_model_specs():
    assert parse_model_specs(["funit=bundled", "stargan=a/b.pt"]) == {"funit": "bundled", "stargan": "a/b.pt"}
    assert parse_model_specs(["runs/x/last.pt"]) == {"last": "runs/x/last.pt"}
    with pytest.raises(InvalidParameterError, match="twice"):
        parse_model_specs(["a=x", "a=y"])
    with pytest.raises(InvalidParameterError, match="NAME=CHECKPOINT"):
        parse_model_specs(["a="])
