"""Agreement statistics of the evaluation (R^2, ICC(A,1)) against published worked examples."""

import numpy as np
import pytest

from MicroCTLikeLib.evaluation import agreement, icc_single


def test_icc_matches_shrout_fleiss_1979_table():
    # Shrout & Fleiss (1979), Psychological Bulletin 86(2):420, Table 2: 6 targets x 4 judges;
    # Table 4 gives ICC(2,1) = .29 and ICC(3,1) = .71.
    ratings = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    icc2, icc3 = icc_single(ratings)
    assert round(icc2, 2) == 0.29
    assert round(icc3, 2) == 0.71


def test_agreement_separates_correlation_from_absolute_agreement():
    rng = np.random.default_rng(0)
    reference = rng.uniform(0.05, 0.25, 40)
    identical = agreement(reference, reference)
    assert identical["r2"] == pytest.approx(1.0) and identical["icc_a1"] == pytest.approx(1.0)
    shifted = agreement(reference + 0.1, reference)  # perfectly correlated, 0.1 too high
    assert shifted["r2"] == pytest.approx(1.0)
    assert shifted["icc_c1"] == pytest.approx(1.0)
    assert shifted["icc_a1"] < 0.5
    assert shifted["bias"] == pytest.approx(0.1)
    assert shifted["bias_percent"] == pytest.approx(100 * 0.1 / reference.mean())
    constant = agreement(np.full(40, 0.16), reference)  # the failure mode: same output for every input
    assert constant["r2"] == 0.0 and constant["icc_a1"] == pytest.approx(0.0, abs=1e-12)
