"""Statistics of a method comparison, with the unit of analysis a VOI or a specimen.

Agreement and association of a measurement (BV/TV, Tb.Th, Tb.Sp of MDCT or of a generated
volume) with the reference (micro-CT, or the simulator's binary truth):

* :func:`linear_regression` — ordinary least squares: slope, intercept, r, R^2, F, p;
* :func:`icc` — intraclass correlations from the two-way ANOVA of Shrout & Fleiss (1979):
  ICC(A,1) = ICC(2,1) (two-way random, absolute agreement, single measurement) is the
  primary figure, with its 95 % confidence interval; ICC(C,1) = ICC(3,1) (consistency)
  is labelled as such;
* :func:`bland_altman` — mean difference and limits of agreement (Bland & Altman 1986);
* :func:`steiger_z` — Steiger's (1980) Z for two dependent correlations sharing one
  variable, r(generated, micro-CT) against r(MDCT, micro-CT) on the same specimens;
  :func:`fisher_z_independent` is the independent-samples test a study may have used
  (the wrong model for correlations on the same specimens; reported, labelled);
* method comparisons: :func:`friedman`, :func:`wilcoxon`, :func:`mann_whitney`,
  :func:`paired_t`, :func:`lilliefors`, :func:`levene`.

The formulas are written out here (numpy/scipy); the tests check them against the
published worked examples and against pingouin/statsmodels. Every function returns a
plain dict of floats (NaN where undefined, e.g. fewer than three pairs).
"""

from __future__ import annotations

import math
from typing import Dict, Sequence

import numpy as np

from ..errors import InvalidParameterError


def _pair(x, y, *, minimum: int = 2):
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise InvalidParameterError(f"paired statistics need two samples of one length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep], int(keep.sum()) >= minimum


def linear_regression(x, y) -> Dict[str, float]:
    """Least-squares line ``y = slope * x + intercept``.

    Returns n, slope, intercept, r, r2, F (= t^2 of the slope, df 1 and n-2), p (of the
    slope), slope_se. Pairs with a NaN are dropped.
    """
    from scipy import stats

    x, y, ok = _pair(x, y, minimum=3)
    n = int(x.size)
    nan = float("nan")
    if not ok or np.ptp(x) == 0:
        return {"n": n, "slope": nan, "intercept": nan, "r": nan, "r2": nan, "F": nan, "p": nan, "slope_se": nan}
    fit = stats.linregress(x, y)
    r = float(fit.rvalue)
    df = n - 2
    f_value = r * r * df / (1 - r * r) if r * r < 1 else math.inf
    return {"n": n, "slope": float(fit.slope), "intercept": float(fit.intercept), "r": r, "r2": r * r,
            "F": float(f_value), "p": float(fit.pvalue), "slope_se": float(fit.stderr)}


def icc(ratings, *, alpha: float = 0.05) -> Dict[str, float]:
    """Intraclass correlations of ``ratings`` (n targets x k raters), Shrout & Fleiss (1979).

    Two-way ANOVA mean squares BMS (targets), JMS (raters), EMS (residual) and

    * ``icc_a1`` = ICC(2,1) = (BMS - EMS) / (BMS + (k-1) EMS + k (JMS - EMS) / n),
      absolute agreement, with the Satterthwaite-based 95 % CI of Shrout & Fleiss (eq. 8-9);
    * ``icc_c1`` = ICC(3,1) = (BMS - EMS) / (BMS + (k-1) EMS), consistency, CI from
      F = BMS/EMS;
    * ``icc_1`` = ICC(1,1), one-way.

    Rows with a NaN are dropped. doi:10.1037/0033-2909.86.2.420
    """
    from scipy import stats

    data = np.asarray(ratings, dtype=float)
    if data.ndim != 2 or data.shape[1] < 2:
        raise InvalidParameterError(f"ICC needs an (n targets x k raters) table with k >= 2, got shape {data.shape}")
    data = data[np.all(np.isfinite(data), axis=1)]
    n, k = data.shape
    keys = ("icc_a1", "icc_a1_ci_low", "icc_a1_ci_high", "icc_c1", "icc_c1_ci_low", "icc_c1_ci_high", "icc_1",
            "bms", "jms", "ems", "wms")
    out: Dict[str, float] = {"n": n, "k": k, **{key: float("nan") for key in keys}}
    if n < 3:
        return out
    grand = data.mean()
    ss_total = float(((data - grand) ** 2).sum())
    ss_targets = float(k * ((data.mean(axis=1) - grand) ** 2).sum())
    ss_raters = float(n * ((data.mean(axis=0) - grand) ** 2).sum())
    ss_error = ss_total - ss_targets - ss_raters
    # sums of squares at rounding-noise level are zero: a table whose rows or columns are
    # constant must give exact zeros, not +-1e-33 that decide the sign of an ICC
    noise = 1e-12 * ss_total
    ss_targets, ss_raters, ss_error = (0.0 if abs(v) <= noise else v for v in (ss_targets, ss_raters, ss_error))
    bms = ss_targets / (n - 1)
    jms = ss_raters / (k - 1)
    ems = ss_error / ((n - 1) * (k - 1))
    wms = (ss_raters + ss_error) / (n * (k - 1))
    out.update(bms=bms, jms=jms, ems=ems, wms=wms)
    # a zero denominator (no variance at all, or none between targets) leaves the ICC undefined: NaN
    out["icc_1"] = _ratio(bms - wms, bms + (k - 1) * wms)
    a1 = _ratio(bms - ems, bms + (k - 1) * ems + k * (jms - ems) / n)
    c1 = _ratio(bms - ems, bms + (k - 1) * ems)
    out["icc_a1"], out["icc_c1"] = a1, c1
    q = 1 - alpha / 2
    if ems > 0 and np.isfinite(a1):
        f_j = jms / ems
        top = k * a1 * f_j + n * (1 + (k - 1) * a1) - k * a1
        v = (k - 1) * (n - 1) * top ** 2 / ((n - 1) * k ** 2 * a1 ** 2 * f_j ** 2 + (n * (1 + (k - 1) * a1) - k * a1) ** 2)
        f_u = stats.f.ppf(q, n - 1, v)
        f_l = stats.f.ppf(q, v, n - 1)
        out["icc_a1_ci_low"] = n * (bms - f_u * ems) / (f_u * (k * jms + (k * n - k - n) * ems) + n * bms)
        out["icc_a1_ci_high"] = n * (f_l * bms - ems) / (k * jms + (k * n - k - n) * ems + n * f_l * bms)
        f_0 = bms / ems
        f_low = f_0 / stats.f.ppf(q, n - 1, (n - 1) * (k - 1))
        f_high = f_0 * stats.f.ppf(q, (n - 1) * (k - 1), n - 1)
        out["icc_c1_ci_low"] = (f_low - 1) / (f_low + k - 1)
        out["icc_c1_ci_high"] = (f_high - 1) / (f_high + k - 1)
    return {key: int(value) if key in ("n", "k") else float(value) for key, value in out.items()}


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is zero."""
    return float(numerator / denominator) if denominator != 0 else float("nan")


def agreement(method, reference, *, alpha: float = 0.05) -> Dict[str, float]:
    """ICC of one method against a reference on the same targets (k = 2 raters)."""
    x, y, _ = _pair(method, reference, minimum=0)
    return icc(np.column_stack([x, y]), alpha=alpha)


def bland_altman(method, reference, *, sd_multiplier: float = 1.96) -> Dict[str, float]:
    """Bland-Altman: mean difference (method - reference), its sample SD, limits
    mean +- ``sd_multiplier`` SD (the 1986 paper used 2), and the 95 % CI of the bias.

    doi:10.1016/S0140-6736(86)90837-8
    """
    from scipy import stats

    x, y, ok = _pair(method, reference)
    diff = x - y
    n = int(diff.size)
    nan = float("nan")
    if not ok:
        return {"n": n, "bias": nan, "sd": nan, "loa_low": nan, "loa_high": nan, "bias_ci_low": nan,
                "bias_ci_high": nan}
    bias = float(diff.mean())
    sd = float(diff.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n))
    return {"n": n, "bias": bias, "sd": sd, "loa_low": bias - sd_multiplier * sd,
            "loa_high": bias + sd_multiplier * sd, "bias_ci_low": bias - half, "bias_ci_high": bias + half}


def steiger_z(r_jk: float, r_jh: float, r_kh: float, n: int) -> Dict[str, float]:
    """Steiger's (1980, eq. 15) Z for H0: rho_jk = rho_jh, two correlations sharing variable j.

    Here j = micro-CT, k = generated, h = MDCT: ``r_jk`` = r(generated, micro-CT),
    ``r_jh`` = r(MDCT, micro-CT), ``r_kh`` = r(generated, MDCT), ``n`` specimens.
    With Fisher's z of both and the pooled r-bar = (r_jk + r_jh)/2,

    psi = r_kh (1 - 2 rbar^2) - rbar^2 (1 - 2 rbar^2 - r_kh^2) / 2,   c = psi / (1 - rbar^2)^2,
    Z = (z_jk - z_jh) sqrt(n - 3) / sqrt(2 - 2c);  p two-sided.

    doi:10.1037/0033-2909.87.2.245
    """
    from scipy import stats

    nan = float("nan")
    values = (r_jk, r_jh, r_kh)
    if n < 4 or not all(np.isfinite(values)) or max(abs(v) for v in values) >= 1:
        return {"z": nan, "p": nan, "n": n, "c": nan}
    rbar = (r_jk + r_jh) / 2
    psi = r_kh * (1 - 2 * rbar ** 2) - 0.5 * rbar ** 2 * (1 - 2 * rbar ** 2 - r_kh ** 2)
    c = psi / (1 - rbar ** 2) ** 2
    z = (math.atanh(r_jk) - math.atanh(r_jh)) * math.sqrt(n - 3) / math.sqrt(2 - 2 * c)
    return {"z": float(z), "p": float(2 * stats.norm.sf(abs(z))), "n": n, "c": float(c)}


def fisher_z_independent(r1: float, n1: int, r2: float, n2: int) -> Dict[str, float]:
    """Fisher's z test of two correlations from *independent* samples (labelled: the wrong
    model for correlations measured on the same specimens; see :func:`steiger_z`)."""
    from scipy import stats

    if min(n1, n2) < 4 or not (np.isfinite(r1) and np.isfinite(r2)) or max(abs(r1), abs(r2)) >= 1:
        return {"z": float("nan"), "p": float("nan")}
    z = (math.atanh(r1) - math.atanh(r2)) / math.sqrt(1 / (n1 - 3) + 1 / (n2 - 3))
    return {"z": float(z), "p": float(2 * stats.norm.sf(abs(z)))}


def compare_correlations(generated, mdct, reference) -> Dict[str, Dict[str, float]]:
    """Steiger's Z (and the independent Fisher z, labelled) of r(generated, ref) vs r(MDCT, ref)."""
    g, m, r = (np.asarray(v, dtype=float) for v in (generated, mdct, reference))
    keep = np.isfinite(g) & np.isfinite(m) & np.isfinite(r)
    g, m, r = g[keep], m[keep], r[keep]
    n = int(keep.sum())
    if n < 4 or min(np.ptp(g), np.ptp(m), np.ptp(r)) == 0:
        nan = float("nan")
        return {"steiger": {"z": nan, "p": nan, "n": n, "c": nan}, "fisher_independent": {"z": nan, "p": nan}}
    r_jk = float(np.corrcoef(g, r)[0, 1])
    r_jh = float(np.corrcoef(m, r)[0, 1])
    r_kh = float(np.corrcoef(g, m)[0, 1])
    return {"r_generated_reference": r_jk, "r_mdct_reference": r_jh, "r_generated_mdct": r_kh,
            "steiger": steiger_z(r_jk, r_jh, r_kh, n), "fisher_independent": fisher_z_independent(r_jk, n, r_jh, n)}


# ----------------------------------------------------------------- method comparisons
def friedman(*samples: Sequence[float]) -> Dict[str, float]:
    """Friedman's chi-square over k >= 3 related samples (methods measured on the same units)."""
    from scipy import stats

    data = np.column_stack([np.asarray(s, dtype=float) for s in samples])
    data = data[np.all(np.isfinite(data), axis=1)]
    if data.shape[1] < 3 or data.shape[0] < 2:
        return {"statistic": float("nan"), "p": float("nan"), "n": int(data.shape[0]), "k": int(data.shape[1])}
    result = stats.friedmanchisquare(*data.T)
    return {"statistic": float(result.statistic), "p": float(result.pvalue), "n": int(data.shape[0]),
            "k": int(data.shape[1])}


def wilcoxon(x, y) -> Dict[str, float]:
    """Wilcoxon signed-rank test of paired samples (two-sided): the right paired test."""
    from scipy import stats

    x, y, ok = _pair(x, y)
    if not ok or np.all(x == y):
        return {"statistic": float("nan"), "p": float("nan"), "n": int(x.size)}
    result = stats.wilcoxon(x, y)
    return {"statistic": float(result.statistic), "p": float(result.pvalue), "n": int(x.size)}


def mann_whitney(x, y) -> Dict[str, float]:
    """Mann-Whitney U (two-sided), as the study compared methods (ignores the pairing)."""
    from scipy import stats

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size < 1 or y.size < 1:
        return {"statistic": float("nan"), "p": float("nan")}
    result = stats.mannwhitneyu(x, y, alternative="two-sided")
    return {"statistic": float(result.statistic), "p": float(result.pvalue)}


def paired_t(x, y) -> Dict[str, float]:
    """Paired t-test (two-sided)."""
    from scipy import stats

    x, y, ok = _pair(x, y)
    if not ok or np.ptp(x - y) == 0:
        return {"t": float("nan"), "p": float("nan"), "df": float(max(x.size - 1, 0))}
    result = stats.ttest_rel(x, y)
    return {"t": float(result.statistic), "p": float(result.pvalue), "df": float(x.size - 1)}


def lilliefors(x) -> Dict[str, float]:
    """Lilliefors-corrected Kolmogorov-Smirnov test of normality (statsmodels' table)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 4 or np.ptp(x) == 0:
        return {"statistic": float("nan"), "p": float("nan")}
    try:
        from statsmodels.stats.diagnostic import lilliefors as _lilliefors
    except ImportError:
        return {"statistic": float("nan"), "p": float("nan"),
                "note": "statsmodels is not installed (pip install 'microctlike[evaluation]')"}
    statistic, p = _lilliefors(x, dist="norm", pvalmethod="table")
    return {"statistic": float(statistic), "p": float(p)}


def levene(*samples: Sequence[float]) -> Dict[str, float]:
    """Levene's test of equal variances with center='mean' (the original Levene)."""
    from scipy import stats

    clean = [np.asarray(s, dtype=float)[np.isfinite(np.asarray(s, dtype=float))] for s in samples]
    if len(clean) < 2 or min(c.size for c in clean) < 2:
        return {"statistic": float("nan"), "p": float("nan")}
    result = stats.levene(*clean, center="mean")
    return {"statistic": float(result.statistic), "p": float(result.pvalue)}
