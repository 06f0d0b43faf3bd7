"""Figures of the cohort report (matplotlib, Agg backend: no display needed).

* box plots of SSIM (and FID when computed) per method, overall and cancellous, one point
  per specimen;
* regression scatter of every method against micro-CT per metric (one point per VOI, the
  identity line and the fitted line with R²);
* Bland-Altman plots per metric and method against micro-CT;
* a middle slice of every method beside micro-CT, per specimen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping

import numpy as np

from . import statistics as st
from .cohort import MDCT, METRIC_LABELS, METRICS, MICROCT
from .tables import method_label

COLOURS = ["#555555", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _labels(results, data) -> Dict[str, str]:
    out = {MDCT: MDCT, MICROCT: MICROCT}
    out.update({n: method_label(n, results["models"][n]) for n in data["names"]})
    return out


def _methods(data) -> List[str]:
    """The compared methods in report order: MDCT, then every model."""
    return [MDCT] + data["names"]


def _save(plt, fig, path: Path, **savefig) -> Path:
    """Lay out, write (90 dpi) and free ``fig``; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=90, **savefig)
    plt.close(fig)
    return path


def similarity_boxplots(results, data, path: Path) -> Path:
    plt = _plt()
    labels = _labels(results, data)
    methods = _methods(data)
    kinds = ["ssim"] + (["fid"] if results.get("fid") else [])
    fig, axes = plt.subplots(len(kinds), 2, figsize=(11, 3.8 * len(kinds)), squeeze=False)
    for row, kind in enumerate(kinds):
        for col, region in enumerate(("overall", "cancellous")):
            ax = axes[row, col]
            series = [np.asarray(data["similarity"][m][kind][region], float) for m in methods]
            ax.boxplot(series, showfliers=False)
            ax.set_xticks(range(1, len(methods) + 1), [labels[m] for m in methods], rotation=20, fontsize=8)
            rng = np.random.default_rng(0)
            for i, values in enumerate(series):
                ax.scatter(i + 1 + rng.uniform(-0.08, 0.08, values.size), values, s=14, color=COLOURS[i % 7],
                           zorder=3)
            ax.set_title(f"{region} {kind.upper()} vs micro-CT (one point per specimen)", fontsize=10)
            ax.grid(alpha=0.3)
    return _save(plt, fig, path)


def regression_scatter(results, data, path: Path, reference: str = MICROCT) -> Path:
    plt = _plt()
    labels = _labels(results, data)
    methods = _methods(data)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(5 * len(METRICS), 4.6))
    for ax, m in zip(axes, METRICS):
        x_ref = data["metrics"][reference][m]
        low = np.nanmin([np.nanmin(data["metrics"][k][m]) for k in methods + [reference]])
        high = np.nanmax([np.nanmax(data["metrics"][k][m]) for k in methods + [reference]])
        ax.plot([low, high], [low, high], color="black", lw=0.8, ls=":", label="identity")
        for i, method in enumerate(methods):
            y = data["metrics"][method][m]
            fit = st.linear_regression(x_ref, y)
            ax.scatter(x_ref, y, s=16, color=COLOURS[i % 7], label=f"{labels[method]} (R² {fit['r2']:.2f})")
            if np.isfinite(fit["slope"]):
                xs = np.array([np.nanmin(x_ref), np.nanmax(x_ref)])
                ax.plot(xs, fit["slope"] * xs + fit["intercept"], color=COLOURS[i % 7], lw=1)
        ax.set_xlabel(f"{reference} {METRIC_LABELS[m]}")
        ax.set_ylabel(f"method {METRIC_LABELS[m]}")
        ax.set_title(f"{METRIC_LABELS[m]} per VOI", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return _save(plt, fig, path)


def bland_altman_grid(results, data, path: Path, reference: str = MICROCT) -> Path:
    plt = _plt()
    labels = _labels(results, data)
    methods = _methods(data)
    fig, axes = plt.subplots(len(METRICS), len(methods), figsize=(3.3 * len(methods), 2.9 * len(METRICS)),
                             squeeze=False)
    for r, m in enumerate(METRICS):
        ref = data["metrics"][reference][m]
        for c, method in enumerate(methods):
            ax = axes[r, c]
            x = data["metrics"][method][m]
            ba = st.bland_altman(x, ref)
            ax.scatter((x + ref) / 2, x - ref, s=12, color=COLOURS[c % 7])
            for value, style in ((ba["bias"], "-"), (ba["loa_low"], "--"), (ba["loa_high"], "--")):
                if np.isfinite(value):
                    ax.axhline(value, color="black", lw=0.8, ls=style)
            ax.axhline(0, color="grey", lw=0.5, ls=":")
            ax.set_title(f"{labels[method]}: {METRIC_LABELS[m]}", fontsize=8)
            ax.tick_params(labelsize=7)
            if c == 0:
                ax.set_ylabel(f"method - {reference}", fontsize=8)
            if r == len(METRICS) - 1:
                ax.set_xlabel("mean of the two", fontsize=8)
    fig.suptitle(f"Bland-Altman against {reference} (bias and bias ± 1.96 SD), one point per VOI", fontsize=10)
    return _save(plt, fig, path)


def slice_panels(results, data, path: Path, out_dir: Path) -> Path:
    """For each specimen: the middle generated slice of MDCT, each model and micro-CT (8-bit)."""
    plt = _plt()
    labels = _labels(results, data)
    names = data["names"]
    cases = data["cases"]
    columns = [MDCT] + names + [MICROCT]
    fig, axes = plt.subplots(len(cases), len(columns), figsize=(2.3 * len(columns), 2.4 * len(cases)),
                             squeeze=False, facecolor="black")
    for r, case in enumerate(cases):
        previews = {}
        for name in names:
            preview = out_dir / "cases" / case / f"{name}.preview.npz"
            if preview.is_file():
                with np.load(preview) as npz:
                    previews[name] = npz["generated"]
                    previews.setdefault(MDCT, npz[MDCT])
                    previews.setdefault(MICROCT, npz[MICROCT.replace(" ", "_")])
        for c, column in enumerate(columns):
            ax = axes[r, c]
            if column in previews:
                ax.imshow(previews[column], cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(labels[column], color="white", fontsize=8)
            if c == 0:
                ax.set_ylabel(case, color="white", fontsize=8)
    return _save(plt, fig, path, facecolor="black")


def study_figures(results: Mapping[str, Any], data: Mapping[str, Any], folder) -> List[Dict[str, str]]:
    """Write every figure into ``folder``; returns [{"path" (relative to the report), "title"}]."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out_dir = folder.parent
    made = [
        (similarity_boxplots(results, data, folder / "similarity_boxplots.png"),
         "SSIM (and FID) against micro-CT per method, overall and cancellous; one point per specimen"),
        (regression_scatter(results, data, folder / "regression_vs_microct.png"),
         "Each method's BV/TV, Tb.Th, Tb.Sp against micro-CT's, one point per VOI, fitted lines with R²"),
        (bland_altman_grid(results, data, folder / "bland_altman_vs_microct.png"),
         "Bland-Altman plots against micro-CT per metric and method"),
        (slice_panels(results, data, folder / "slices.png", out_dir),
         "The middle generated slice of each specimen: MDCT, every model, micro-CT (8-bit, the SSIM recipe)"),
    ]
    return [{"path": str(p.relative_to(out_dir)), "title": t} for p, t in made]
