"""Statistics of the evaluation against published worked examples, pingouin and hand arithmetic."""

import math

import numpy as np
import pytest

from MicroCTLikeLib.evaluate import statistics as st

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)

# Bland & Altman (1986), Lancet, Table 1: peak expiratory flow (l/min), first reading of the
# large Wright meter and of the mini Wright meter on 17 subjects.
WRIGHT = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
MINI_WRIGHT = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]


def fixed_data(n=24, seed=3):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.06, 0.25, n)
    a = truth + rng.normal(0, 0.02, n)
    b = 0.8 * truth + 0.03 + rng.normal(0, 0.03, n)
    return truth, a, b


def test_icc_reproduces_shrout_fleiss_table():
    out = st.icc(SHROUT_FLEISS)
    # the paper's ANOVA (Table 3) and ICCs (Table 4), two decimals as published
    assert out["bms"] == pytest.approx(11.24, abs=0.005)
    assert out["wms"] == pytest.approx(6.26, abs=0.005)
    assert out["jms"] == pytest.approx(32.49, abs=0.005)
    assert out["ems"] == pytest.approx(1.02, abs=0.005)
    assert out["icc_1"] == pytest.approx(0.17, abs=0.005)
    assert out["icc_a1"] == pytest.approx(0.29, abs=0.005)
    assert out["icc_c1"] == pytest.approx(0.71, abs=0.005)


def test_icc_is_total_on_degenerate_tables():
    """No variance anywhere: undefined (NaN), never a ZeroDivisionError; a constant reference
    column with varying ratings: every between-target difference is disagreement."""
    constant = st.icc(np.full((4, 2), 0.12))
    assert math.isnan(constant["icc_a1"]) and math.isnan(constant["icc_c1"]) and math.isnan(constant["icc_1"])
    assert constant["bms"] == constant["jms"] == constant["ems"] == 0.0
    reference_constant = st.icc(np.column_stack([[0.15, 0.10, 0.15, 0.10], [0.12] * 4]))
    # BMS = EMS analytically: no agreement beyond chance, ICC(C,1) = ICC(A,1) = 0
    assert reference_constant["icc_c1"] == pytest.approx(0.0, abs=1e-12)
    assert reference_constant["icc_a1"] == pytest.approx(0.0, abs=1e-12)
    identical = st.icc(np.column_stack([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]))
    assert identical["icc_a1"] == 1.0 and identical["icc_c1"] == 1.0
    from MicroCTLikeLib.evaluate.specimen import icc_single

    assert all(math.isnan(v) for v in icc_single(np.full((3, 2), 5.0)))


def test_icc_and_its_interval_match_pingouin():
    pg = pytest.importorskip("pingouin")
    import pandas as pd

    for table in (SHROUT_FLEISS, np.column_stack(fixed_data()[1:])):
        n, k = table.shape
        frame = pd.DataFrame({"target": np.repeat(np.arange(n), k), "rater": np.tile(np.arange(k), n),
                              "score": table.ravel()})
        ref = pg.intraclass_corr(frame, targets="target", raters="rater", ratings="score").set_index("Type")
        out = st.icc(table)
        assert out["icc_a1"] == pytest.approx(ref.loc["ICC(A,1)", "ICC"], abs=1e-9)
        assert out["icc_c1"] == pytest.approx(ref.loc["ICC(C,1)", "ICC"], abs=1e-9)
        assert out["icc_1"] == pytest.approx(ref.loc["ICC(1,1)", "ICC"], abs=1e-9)
        # pingouin rounds its intervals to two decimals
        low, high = ref.loc["ICC(A,1)", "CI95"]
        assert out["icc_a1_ci_low"] == pytest.approx(low, abs=0.0051)
        assert out["icc_a1_ci_high"] == pytest.approx(high, abs=0.0051)
        low, high = ref.loc["ICC(C,1)", "CI95"]
        assert out["icc_c1_ci_low"] == pytest.approx(low, abs=0.0051)
        assert out["icc_c1_ci_high"] == pytest.approx(high, abs=0.0051)


def test_agreement_penalises_a_bias_that_consistency_ignores():
    truth, a, _ = fixed_data()
    same = st.agreement(a, truth)
    shifted = st.agreement(a + 0.1, truth)
    assert shifted["icc_c1"] == pytest.approx(same["icc_c1"])
    assert shifted["icc_a1"] < same["icc_a1"] - 0.3
    assert same["icc_a1_ci_low"] < same["icc_a1"] < same["icc_a1_ci_high"]


def test_bland_altman_reproduces_the_1986_example():
    out = st.bland_altman(WRIGHT, MINI_WRIGHT, sd_multiplier=2.0)  # the paper used mean +- 2 SD
    assert out["n"] == 17
    assert out["bias"] == pytest.approx(-2.1, abs=0.05)
    assert out["sd"] == pytest.approx(38.8, abs=0.05)
    assert out["loa_low"] == pytest.approx(-79.7, abs=0.1)
    assert out["loa_high"] == pytest.approx(75.5, abs=0.1)
    default = st.bland_altman(WRIGHT, MINI_WRIGHT)
    assert default["loa_high"] - default["loa_low"] == pytest.approx(2 * 1.96 * out["sd"])


def test_regression_matches_pingouin_and_the_f_identity():
    pg = pytest.importorskip("pingouin")
    truth, a, b = fixed_data()
    out = st.linear_regression(truth, b)
    ref = pg.linear_regression(truth, b).set_index("names")
    assert out["slope"] == pytest.approx(ref.loc["x1", "coef"])
    assert out["intercept"] == pytest.approx(ref.loc["Intercept", "coef"])
    assert out["r2"] == pytest.approx(ref.loc["x1", "r2"])
    assert out["p"] == pytest.approx(ref.loc["x1", "pval"])
    assert out["F"] == pytest.approx((out["slope"] / out["slope_se"]) ** 2)
    from scipy import stats

    assert stats.f.sf(out["F"], 1, out["n"] - 2) == pytest.approx(out["p"])
    assert math.isnan(st.linear_regression([1, 2], [3, 4])["r2"])  # too few pairs: undefined, not an error


def test_steiger_z_hand_computed():
    # r(generated, micro-CT) 0.7, r(MDCT, micro-CT) 0.5, r(generated, MDCT) 0.6 on 50 specimens
    # rbar = 0.6, rbar^2 = 0.36; psi = 0.6 (1 - 0.72) - 0.5 * 0.36 (1 - 0.72 - 0.36) = 0.168 + 0.0144 = 0.1824
    # c = 0.1824 / 0.64^2 = 0.4453125; Z = (atanh 0.7 - atanh 0.5) sqrt(47) / sqrt(2 - 0.890625)
    #   = (0.8673005 - 0.5493061) * 6.8556546 / 1.0532687 = 2.06978
    out = st.steiger_z(0.7, 0.5, 0.6, 50)
    assert out["c"] == pytest.approx(0.4453125)
    assert out["z"] == pytest.approx(2.06978, abs=1e-4)
    assert out["p"] == pytest.approx(0.03848, abs=1e-4)
    # the independent test ignores the shared specimens: a smaller z for positively related methods
    independent = st.fisher_z_independent(0.7, 50, 0.5, 50)
    assert independent["z"] == pytest.approx(0.3179944 / math.sqrt(2 / 47), abs=1e-5)
    assert independent["z"] < out["z"]


def test_compare_correlations_uses_the_sample_correlations():
    truth, a, b = fixed_data()
    out = st.compare_correlations(a, b, truth)
    assert out["r_generated_reference"] == pytest.approx(np.corrcoef(a, truth)[0, 1])
    expected = st.steiger_z(out["r_generated_reference"], out["r_mdct_reference"], out["r_generated_mdct"], truth.size)
    assert out["steiger"]["z"] == pytest.approx(expected["z"])


def test_method_comparisons_match_pingouin():
    pg = pytest.importorskip("pingouin")
    import pandas as pd

    truth, a, b = fixed_data()
    c = a + np.random.default_rng(9).normal(0.01, 0.02, a.size)
    w = st.wilcoxon(a, b)
    ref = pg.wilcoxon(a, b)
    assert w["statistic"] == pytest.approx(ref["W_val"].iloc[0])
    assert w["p"] == pytest.approx(ref["p_val"].iloc[0])
    u = st.mann_whitney(a, b)
    ref = pg.mwu(a, b, alternative="two-sided")
    assert u["statistic"] == pytest.approx(ref["U_val"].iloc[0])
    assert u["p"] == pytest.approx(ref["p_val"].iloc[0])
    t = st.paired_t(a, b)
    ref = pg.ttest(a, b, paired=True)
    assert t["t"] == pytest.approx(ref["T"].iloc[0])
    assert t["p"] == pytest.approx(ref["p_val"].iloc[0])
    f = st.friedman(a, b, c)
    long = pd.DataFrame({"unit": np.tile(np.arange(a.size), 3), "method": np.repeat(["a", "b", "c"], a.size),
                         "value": np.concatenate([a, b, c])})
    ref = pg.friedman(long, dv="value", within="method", subject="unit")
    assert f["statistic"] == pytest.approx(ref["Q"].iloc[0])
    assert f["p"] == pytest.approx(ref["p_unc"].iloc[0])
    lev = st.levene(a, b, c)
    ref = pg.homoscedasticity([a, b, c], method="levene", center="mean")
    assert lev["statistic"] == pytest.approx(ref["W"].iloc[0])


def test_lilliefors_statistic_is_the_ks_distance_with_estimated_parameters():
    pytest.importorskip("statsmodels")
    from scipy import stats

    x = np.random.default_rng(4).normal(5, 2, 40)
    out = st.lilliefors(x)
    z = np.sort((x - x.mean()) / x.std(ddof=1))
    cdf = stats.norm.cdf(z)
    i = np.arange(1, x.size + 1)
    d = max(np.max(i / x.size - cdf), np.max(cdf - (i - 1) / x.size))
    assert out["statistic"] == pytest.approx(d)
    assert out["p"] > 0.05  # normal data
    skewed = np.random.default_rng(4).exponential(1, 200)
    assert st.lilliefors(skewed)["p"] < 0.01
