"""Tables 1-4 of the study from the raw results of :func:`.cohort.evaluate_study`.

* Table 1 — similarity to micro-CT (SSIM, FID; overall and cancellous), mean +- SD over
  specimens, for MDCT and every model; tests over methods (Friedman; Wilcoxon signed-rank
  and the study's Mann-Whitney U of each model against MDCT).
* Table 2 — the paired model(s) (pix2pixHD) beside the unpaired ones.
* Table 3 — BV/TV, Tb.Th, Tb.Sp per VOI: means, linear regression against the reference
  (micro-CT, and the binary truth), paired tests, Steiger's Z of r(model, ref) against
  r(MDCT, ref) (and the independent Fisher z, labelled).
* Table 4 — agreement: ICC(A,1) = ICC(2,1) with 95 % CI (primary), ICC(C,1) labelled,
  Bland-Altman bias and limits.
* Checks — Lilliefors normality per method and metric, Levene (center='mean') across methods.

A table is {"name", "title", "columns", "rows", "notes"}; cells are numbers or strings.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from . import statistics as st
from .cohort import DISPLAY, MDCT, METRIC_LABELS, METRICS, MICROCT, TRUTH

SIMILARITY_ROWS = (("overall", "ssim", "overall SSIM"), ("overall", "fid", "overall FID"),
                   ("cancellous", "ssim", "cancellous SSIM"), ("cancellous", "fid", "cancellous FID"))


def method_label(name: str, info: Mapping[str, Any]) -> str:
    """Row label of a model: its name, with the architecture and width preset when they say more."""
    arch = info.get("architecture") or name
    preset = info.get("preset")
    label = name if name.lower() != arch else DISPLAY.get(arch, arch)
    if preset and preset != "default":
        label += f" ({preset} width)"
    return label


def collect(results: Mapping[str, Any]) -> Dict[str, Any]:
    """Per-unit arrays: similarity per specimen, metrics per VOI (aligned across methods)."""
    names = list(results["models"])
    cases = results["cases"]
    similarity: Dict[str, Dict[str, Dict[str, List[float]]]] = {}
    for label in [MDCT] + names:
        similarity[label] = {"ssim": {"overall": [], "cancellous": []}, "fid": {"overall": [], "cancellous": []}}
    for case in cases:
        first = case["models"][names[0]]
        for region in ("overall", "cancellous"):
            similarity[MDCT]["ssim"][region].append(first["ssim_mdct"][region])
            for name in names:
                similarity[name]["ssim"][region].append(case["models"][name]["ssim"][region])
    fid = results.get("fid")
    if fid:
        for region in ("overall", "cancellous"):
            for label in [MDCT] + names:
                per = fid[region][label]["per_specimen"]
                similarity[label]["fid"][region] = [per[c["case"]] for c in cases]
    labels = [MDCT] + names + [MICROCT] + ([TRUTH] if all(TRUTH in c["reference"]["measurements"] for c in cases) else [])
    metrics: Dict[str, Dict[str, np.ndarray]] = {label: {m: [] for m in METRICS} for label in labels}
    units: List[str] = []
    for case in cases:
        ref = case["reference"]["measurements"]
        for index, entry in enumerate(ref[MICROCT]):
            units.append(f"{case['case']}/{entry['voi_name']}")
            for label in labels:
                source = case["models"][label]["measurements"] if label in names else ref[label]
                for m in METRICS:
                    value = source[index].get(m)
                    metrics[label][m].append(float("nan") if value is None else float(value))
    metrics = {label: {m: np.asarray(v, float) for m, v in d.items()} for label, d in metrics.items()}
    return {"names": names, "labels": labels, "cases": [c["case"] for c in cases], "units": units,
            "similarity": similarity, "metrics": metrics}


def _mean_sd(values) -> str:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "n/a"
    sd = values.std(ddof=1) if values.size > 1 else float("nan")
    digits = 1 if abs(values.mean()) >= 10 else 3
    return f"{values.mean():.{digits}f} ± {sd:.{digits}f}"


def _labels(results, data) -> Dict[str, str]:
    out = {MDCT: MDCT, MICROCT: MICROCT, TRUTH: TRUTH}
    out.update({name: method_label(name, results["models"][name]) for name in data["names"]})
    return out


def table1(results, data) -> Dict[str, Any]:
    labels = _labels(results, data)
    unpaired = [n for n in data["names"] if results["models"][n].get("architecture") != "pix2pixhd"]
    methods = [MDCT] + unpaired
    rows = []
    for region, kind, title in SIMILARITY_ROWS:
        rows.append([title] + [_mean_sd(data["similarity"][m][kind][region]) for m in methods])
    notes = [f"n = {len(data['cases'])} specimens; mean ± SD over specimens (each specimen's value is the mean over "
             "its slices)."]
    if not results.get("fid"):
        notes.append(results.get("fid_status", "FID not computed."))
    return {"name": "table1_similarity", "title": "Table 1. Similarity to micro-CT (unpaired methods and MDCT)",
            "columns": ["Metric"] + [labels[m] for m in methods], "rows": rows, "notes": notes}


def table1_tests(results, data) -> Dict[str, Any]:
    labels = _labels(results, data)
    unpaired = [n for n in data["names"] if results["models"][n].get("architecture") != "pix2pixhd"]
    rows = []
    for region, kind, title in SIMILARITY_ROWS:
        series = {m: np.asarray(data["similarity"][m][kind][region], float) for m in [MDCT] + data["names"]}
        if not all(s.size for s in series.values()):
            continue
        methods = [MDCT] + unpaired
        fr = st.friedman(*[series[m] for m in methods]) if len(methods) >= 3 else {"statistic": float("nan"),
                                                                                    "p": float("nan")}
        rows.append([title, "Friedman over " + ", ".join(labels[m] for m in methods), fr["statistic"], fr["p"]])
        for name in data["names"]:
            w = st.wilcoxon(series[name], series[MDCT])
            u = st.mann_whitney(series[name], series[MDCT])
            rows.append([title, f"{labels[name]} vs MDCT: Wilcoxon signed-rank (paired)", w["statistic"], w["p"]])
            rows.append([title, f"{labels[name]} vs MDCT: Mann-Whitney U (as the study)", u["statistic"], u["p"]])
    return {"name": "table1_tests", "title": "Table 1 (tests). Methods compared on the same specimens",
            "columns": ["Metric", "Test", "Statistic", "p"], "rows": rows,
            "notes": ["Wilcoxon is the right test for paired values (same specimens); Mann-Whitney U ignores the "
                      "pairing and is shown because the study used it. With few specimens no test can reach small p "
                      "(Wilcoxon on n = 4 has minimum two-sided p = 0.125)."]}


def table2(results, data) -> Dict[str, Any]:
    labels = _labels(results, data)
    paired = [n for n in data["names"] if results["models"][n].get("architecture") == "pix2pixhd"]
    methods = paired + [n for n in data["names"] if n not in paired][:1]
    rows = [[title] + [_mean_sd(data["similarity"][m][kind][region]) for m in methods]
            for region, kind, title in SIMILARITY_ROWS]
    notes = ["pix2pixHD trains on paired slices (here: the simulator's registered frames)."]
    if not paired:
        notes = ["No paired model (pix2pixHD) was evaluated."]
    return {"name": "table2_paired", "title": "Table 2. The paired method (pix2pixHD)",
            "columns": ["Metric"] + [labels[m] for m in methods], "rows": rows, "notes": notes}


def table3(results, data, reference: str = MICROCT) -> Dict[str, Any]:
    labels = _labels(results, data)
    metrics = data["metrics"]
    methods = [MDCT] + data["names"] + ([MICROCT] if reference == TRUTH else [])
    rows = []
    for m in METRICS:
        ref = metrics[reference][m]
        for method in methods:
            x = metrics[method][m]
            reg = st.linear_regression(ref, x)
            t = st.paired_t(x, ref)
            w = st.wilcoxon(x, ref)
            steiger: Dict[str, Any] = {"steiger": {"z": float("nan"), "p": float("nan")},
                                       "fisher_independent": {"z": float("nan"), "p": float("nan")}}
            if method not in (MDCT, MICROCT):
                steiger = st.compare_correlations(x, metrics[MDCT][m], ref)
            rows.append([METRIC_LABELS[m], labels[method], reg["n"], _mean_sd(x), _mean_sd(ref), reg["slope"],
                         reg["intercept"], reg["r2"], reg["F"], reg["p"], t["p"], w["p"], steiger["steiger"]["z"],
                         steiger["steiger"]["p"], steiger["fisher_independent"]["z"], steiger["fisher_independent"]["p"]])
    ref_label = labels[reference]
    return {"name": "table3_metrics" + ("_vs_truth" if reference == TRUTH else ""),
            "title": f"Table 3{'b' if reference == TRUTH else ''}. Bone metrics per VOI against {ref_label}",
            "columns": ["Metric", "Method", "n VOIs", "Method mean ± SD", f"{ref_label} mean ± SD", "Slope",
                        "Intercept", "R²", "F", "p (regression)", "p (paired t)", "p (Wilcoxon)",
                        "Steiger Z vs MDCT", "p (Steiger)", "Fisher z (independent; labelled)", "p (Fisher)"],
            "rows": rows,
            "notes": [f"Regression of the method's value on {ref_label}'s (y = slope x + intercept), one point per "
                      "VOI. Steiger's Z compares r(method, reference) with r(MDCT, reference) on the same VOIs "
                      "(dependent correlations); the independent-samples Fisher z is the wrong model and is shown "
                      "only because a study may have used it."]}


def table4(results, data, references: Sequence[str] = (MICROCT, TRUTH)) -> Dict[str, Any]:
    labels = _labels(results, data)
    metrics = data["metrics"]
    rows = []
    for reference in references:
        if reference not in metrics:
            continue
        methods = [MDCT] + data["names"] + ([MICROCT] if reference == TRUTH else [])
        for m in METRICS:
            for method in methods:
                a = st.agreement(metrics[method][m], metrics[reference][m])
                ba = st.bland_altman(metrics[method][m], metrics[reference][m])
                rows.append([METRIC_LABELS[m], labels[method], labels[reference], a["n"], a["icc_a1"],
                             a["icc_a1_ci_low"], a["icc_a1_ci_high"], a["icc_c1"], ba["bias"], ba["loa_low"],
                             ba["loa_high"]])
    return {"name": "table4_agreement", "title": "Table 4. Agreement per VOI: ICC and Bland-Altman",
            "columns": ["Metric", "Method", "Reference", "n VOIs", "ICC(A,1)", "95% CI low", "95% CI high",
                        "ICC(C,1) (consistency)", "Bias (method - ref)", "LoA low", "LoA high"],
            "rows": rows,
            "notes": ["ICC(A,1) = Shrout-Fleiss ICC(2,1), two-way random effects, absolute agreement, single "
                      "measurement: the primary figure. ICC(C,1) = ICC(3,1), consistency (ignores a constant bias). "
                      "Bland-Altman limits = bias ± 1.96 SD of the differences."]}


def checks(results, data) -> Dict[str, Any]:
    labels = _labels(results, data)
    metrics = data["metrics"]
    rows = []
    methods = [MDCT] + data["names"] + [MICROCT]
    for m in METRICS:
        for method in methods:
            lf = st.lilliefors(metrics[method][m])
            rows.append([METRIC_LABELS[m], f"Lilliefors normality: {labels[method]}", lf["statistic"], lf["p"]])
        lv = st.levene(*[metrics[method][m] for method in methods])
        rows.append([METRIC_LABELS[m], "Levene (center='mean') across " + ", ".join(labels[x] for x in methods),
                     lv["statistic"], lv["p"]])
    return {"name": "checks", "title": "Assumption checks (per VOI)", "columns": ["Metric", "Test", "Statistic", "p"],
            "rows": rows, "notes": []}


def per_specimen_ssim(results, data) -> Dict[str, Any]:
    labels = _labels(results, data)
    methods = [MDCT] + data["names"]
    rows = []
    for index, case in enumerate(data["cases"]):
        for region in ("overall", "cancellous"):
            rows.append([case, region] + [data["similarity"][m]["ssim"][region][index] for m in methods])
    return {"name": "ssim_per_specimen", "title": "SSIM against micro-CT per specimen",
            "columns": ["Specimen", "Region"] + [labels[m] for m in methods], "rows": rows, "notes": []}


def headline(results, data) -> Dict[str, Any]:
    """The numbers a reader asks first (also what issue 9 asks of evaluate): R^2 and ICC(A,1)
    of MDCT and of every model against micro-CT and against the truth, and the SSIM."""
    labels = _labels(results, data)
    metrics = data["metrics"]
    rows = []
    for reference in (MICROCT, TRUTH):
        if reference not in metrics:
            continue
        methods = [MDCT] + data["names"] + ([MICROCT] if reference == TRUTH else [])
        for method in methods:
            row: List[Any] = [labels[method], labels[reference]]
            for m in METRICS:
                row.append(st.linear_regression(metrics[reference][m], metrics[method][m])["r2"])
            for m in METRICS:
                row.append(st.agreement(metrics[method][m], metrics[reference][m])["icc_a1"])
            rows.append(row)
    names = [METRIC_LABELS[m].split(" ")[0] for m in METRICS]
    return {"name": "headline", "title": "R² and ICC(A,1) per VOI",
            "columns": ["Method", "Reference"] + [f"R² {n}" for n in names] + [f"ICC(A,1) {n}" for n in names],
            "rows": rows, "notes": [f"n = {len(data['units'])} VOIs of {len(data['cases'])} specimens."]}


def all_tables(results: Mapping[str, Any]) -> Dict[str, Any]:
    data = collect(results)
    tables = [headline(results, data), table1(results, data), table1_tests(results, data), table2(results, data),
              table3(results, data), table4(results, data), per_specimen_ssim(results, data), checks(results, data)]
    if TRUTH in data["metrics"]:
        tables.insert(5, table3(results, data, reference=TRUTH))
    return {"data": data, "tables": tables}


def format_cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "n/a"
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.1e}"
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def markdown(table: Mapping[str, Any]) -> str:
    lines = [f"### {table['title']}", "", "| " + " | ".join(table["columns"]) + " |",
             "|" + "---|" * len(table["columns"])]
    lines += ["| " + " | ".join(format_cell(c) for c in row) + " |" for row in table["rows"]]
    lines += [""] + [f"*{note}*" for note in table.get("notes", [])]
    return "\n".join(lines) + "\n"


def write_csv(table: Mapping[str, Any], path) -> None:
    import csv

    from ..atomic import atomic_output

    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(table["columns"])
            for row in table["rows"]:
                writer.writerow(["" if isinstance(c, float) and not np.isfinite(c) else c for c in row])


__all__ = ["all_tables", "collect", "markdown", "write_csv", "format_cell", "method_label"]

