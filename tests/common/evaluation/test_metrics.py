"""Known-answer tests for common.evaluation.metrics: hand-computed cases and agreement with scikit-learn."""

import itertools
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from common.evaluation.metrics import (
    auc,
    average_precision,
    calibration_curve,
    catalog_coverage,
    dcg_at_k,
    expected_calibration_error,
    hit_rate_at_k,
    intra_list_diversity,
    log_loss,
    mean_average_precision,
    mean_reciprocal_rank,
    ndcg_at_k,
    normalized_cross_entropy,
    paired_bootstrap_interval,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    roc_curve,
    shuffled_reciprocal_rank,
)

SEEDS = [0, 1, 2]


def _random_binary(seed, n=500, decimals=1):
    """Labels correlated with scores; rounding the scores creates many ties."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p).astype(int)
    return y, np.round(p, decimals)


# --- binary classification ---------------------------------------------------


def test_auc_hand_computed():
    # Positive scores 0.35, 0.8; negative scores 0.1, 0.4.
    # Pairs won: 0.35>0.1, 0.8>0.1, 0.8>0.4 (0.35<0.4 lost) -> 3/4.
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_auc_ties_count_half():
    # Positives 0.5, 0.9; negatives 0.5, 0.2.
    # 0.5 vs 0.5 tie = 0.5, 0.5 > 0.2 = 1, 0.9 beats both = 2 -> 3.5/4.
    assert auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)


@pytest.mark.parametrize("seed", SEEDS)
def test_auc_matches_sklearn_with_ties(seed):
    y, p = _random_binary(seed)
    assert len(np.unique(p)) < len(p)
    assert auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


def test_auc_one_class_raises():
    with pytest.raises(ValueError, match="one class"):
        auc([1, 1, 1], [0.2, 0.5, 0.9])


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_curve_matches_sklearn_and_integrates_to_auc(seed):
    y, p = _random_binary(seed)
    fpr, tpr, thresholds = roc_curve(y, p)
    sk_fpr, sk_tpr, sk_thresholds = skm.roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_array_equal(thresholds, sk_thresholds)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc(y, p), abs=1e-12)


def test_log_loss_hand_computed():
    # -(ln 0.8 + ln(1 - 0.3)) / 2 = (0.22314 + 0.35667) / 2 = 0.28991
    expected = -(math.log(0.8) + math.log(0.7)) / 2
    assert log_loss([1, 0], [0.8, 0.3]) == pytest.approx(expected)
    assert expected == pytest.approx(0.28991, abs=1e-5)


def test_log_loss_clips_confident_mistakes():
    # Both rows predict the wrong class with certainty: each costs -ln(1e-7) = 16.118.
    assert log_loss([1, 0], [0.0, 1.0]) == pytest.approx(-math.log(1e-7))


@pytest.mark.parametrize("seed", SEEDS)
def test_log_loss_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, size=500)
    y = (rng.uniform(size=500) < p).astype(int)
    assert log_loss(y, p) == pytest.approx(skm.log_loss(y, p), rel=1e-12)


def test_log_loss_rejects_non_probabilities():
    with pytest.raises(ValueError, match="probabilities"):
        log_loss([0, 1], [-2.0, 3.0])


def test_nce_of_base_rate_predictor_is_exactly_one():
    y = np.array([0, 0, 0, 1, 0, 0, 1, 0, 0, 0])
    assert normalized_cross_entropy(y, np.full(10, y.mean())) == 1.0
    # Same with an explicit (training) base rate that differs from mean(y).
    assert normalized_cross_entropy(y, np.full(10, 0.05), base_rate=0.05) == 1.0


def test_nce_hand_computed_with_explicit_base_rate():
    # log_loss(y, p) = -(ln 0.8 + ln 0.7) / 2; base-rate log loss = -(ln 0.5 + ln 0.5) / 2 = ln 2.
    nce = normalized_cross_entropy([1, 0], [0.8, 0.3], base_rate=0.5)
    assert nce == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2 / math.log(2))


def test_nce_of_informative_predictor_is_below_one():
    rng = np.random.default_rng(0)
    p = rng.beta(1, 20, size=20_000)  # CTR-like: mean ~ 0.05, clustered near 0
    y = (rng.uniform(size=p.size) < p).astype(int)
    assert normalized_cross_entropy(y, p) < 0.95


def test_calibration_curve_and_ece_hand_computed():
    # Two equal-count bins: {0.1, 0.2} with labels {0, 0} and {0.3, 0.4} with labels {1, 1}.
    # Bin means: (0.15, 0.0) and (0.35, 1.0). ECE = (2*|0.15-0| + 2*|0.35-1|) / 4 = 0.4.
    y, p = [0, 1, 0, 1], [0.1, 0.3, 0.2, 0.4]
    mean_pred, observed, counts = calibration_curve(y, p, n_bins=2)
    np.testing.assert_allclose(mean_pred, [0.15, 0.35])
    np.testing.assert_allclose(observed, [0.0, 1.0])
    np.testing.assert_array_equal(counts, [2, 2])
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.4)


def test_calibration_bins_are_equal_count_on_skewed_predictions():
    rng = np.random.default_rng(0)
    p = rng.beta(1, 50, size=1000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    mean_pred, _, counts = calibration_curve(y, p, n_bins=10)
    np.testing.assert_array_equal(counts, np.full(10, 100))
    assert np.all(np.diff(mean_pred) > 0)


def test_calibration_curve_caps_bins_at_row_count():
    _, _, counts = calibration_curve([0, 1, 1], [0.1, 0.5, 0.9], n_bins=10)
    np.testing.assert_array_equal(counts, [1, 1, 1])


def test_ece_calibrated_is_small_and_shifted_is_about_shift():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.0, 0.5, size=100_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, p + 0.1) == pytest.approx(0.1, abs=0.01)


# --- ranking -----------------------------------------------------------------

RANKED = ["a", "b", "c", "d", "e"]
RELEVANT = {"b", "d", "x"}  # hits at ranks 2 and 4; "x" is never retrieved


def test_precision_at_k():
    assert precision_at_k(RANKED, RELEVANT, 1) == 0.0
    assert precision_at_k(RANKED, RELEVANT, 3) == pytest.approx(1 / 3)  # b
    assert precision_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 5)  # b, d
    # The list is shorter than k: missing slots count as misses, 2 / 10.
    assert precision_at_k(RANKED, RELEVANT, 10) == pytest.approx(0.2)


def test_recall_and_hit_rate_at_k():
    assert recall_at_k(RANKED, RELEVANT, 3) == pytest.approx(1 / 3)
    assert recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 3)
    assert hit_rate_at_k(RANKED, RELEVANT, 1) == 0.0
    assert hit_rate_at_k(RANKED, RELEVANT, 2) == 1.0


def test_recall_empty_relevant_raises():
    with pytest.raises(ValueError):
        recall_at_k(RANKED, set(), 3)


def test_k_must_be_positive():
    with pytest.raises(ValueError):
        precision_at_k(RANKED, RELEVANT, 0)


def test_reciprocal_rank_and_mrr():
    assert reciprocal_rank(RANKED, RELEVANT) == 0.5
    assert reciprocal_rank(RANKED, {"z"}) == 0.0
    # (1/2 + 1/1 + 0) / 3 = 0.5
    mrr = mean_reciprocal_rank([RANKED, ["d", "a"], ["c"]], [RELEVANT, {"d"}, {"z"}])
    assert mrr == pytest.approx(0.5)
    with pytest.raises(ValueError):
        mean_reciprocal_rank([RANKED], [RELEVANT, {"d"}])


def test_average_precision_hand_computed():
    # Full list: P@2 = 1/2, P@4 = 2/4; divided by 3 relevant -> (0.5 + 0.5) / 3 = 1/3.
    assert average_precision(RANKED, RELEVANT) == pytest.approx(1 / 3)
    # k=2: only the hit at rank 2 (P@2 = 1/2), divided by min(3, 2) = 2 -> 0.25.
    assert average_precision(RANKED, RELEVANT, k=2) == pytest.approx(0.25)
    # A perfect top-k scores 1.0 even though more relevant items exist.
    assert average_precision(["b", "d"], RELEVANT, k=2) == 1.0
    # MAP: (1/3 + 1) / 2
    assert mean_average_precision([RANKED, ["d"]], [RELEVANT, {"d"}]) == pytest.approx(2 / 3)


def test_average_precision_empty_relevant_raises():
    with pytest.raises(ValueError):
        average_precision(RANKED, [])


@pytest.mark.parametrize("seed", SEEDS)
def test_average_precision_matches_sklearn(seed):
    # sklearn's AP equals ours when every item is ranked and scores have no ties.
    rng = np.random.default_rng(seed)
    n = 200
    scores = rng.permutation(n) / n
    y = (rng.uniform(size=n) < 0.2).astype(int)
    ranked = list(np.argsort(-scores))
    relevant = set(np.flatnonzero(y))
    assert average_precision(ranked, relevant) == pytest.approx(skm.average_precision_score(y, scores), abs=1e-12)


def test_dcg_hand_computed_uses_exponential_gain():
    # (2^3-1)/log2(2) + (2^2-1)/log2(3) + 0 + (2^1-1)/log2(5) = 7 + 1.89279 + 0.43068 = 9.32347
    assert dcg_at_k([3, 2, 0, 1], 4) == pytest.approx(9.32347, abs=1e-5)
    assert dcg_at_k([3, 2, 0, 1], 1) == pytest.approx(7.0)


def test_ndcg_hand_computed():
    gains = {"a": 1, "b": 3, "z": 2}
    # DCG of [a, b, c]: 1/log2(2) + 7/log2(3) + 0 (c unknown -> gain 0)
    # Ideal [3, 2, 1]: 7/log2(2) + 3/log2(3) + 1/log2(4)
    expected = (1 + 7 / math.log2(3)) / (7 + 3 / math.log2(3) + 1 / 2)
    assert ndcg_at_k(["a", "b", "c"], gains, 3) == pytest.approx(expected)
    assert ndcg_at_k(["b", "z", "a"], gains, 3) == pytest.approx(1.0)
    assert ndcg_at_k(["a", "b"], {"a": 0, "b": 0}, 2) == 0.0


def test_linear_gain_discounts_the_gains_themselves():
    # The ESCI gains (exact 1, substitute 0.1, complement 0.01): DCG of [S, E] = 0.1 + 1/log2(3).
    assert dcg_at_k([0.1, 1.0], 2, linear=True) == pytest.approx(0.1 + 1 / math.log2(3))
    gains = {"e": 1.0, "s": 0.1, "c": 0.01}
    expected = (0.1 + 0.01 / math.log2(3)) / (1 + 0.1 / math.log2(3))
    assert ndcg_at_k(["s", "c"], gains, 2, linear=True) == pytest.approx(expected)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 5, 20])
def test_ndcg_matches_sklearn(seed, k):
    rng = np.random.default_rng(seed)
    n = 50
    scores = rng.permutation(n) / n  # no ties: sklearn averages over tied scores
    ranked = list(np.argsort(-scores))
    # Binary gains: 2^g - 1 == g, so sklearn's linear gain agrees directly.
    binary = rng.integers(0, 2, size=n)
    assert ndcg_at_k(ranked, dict(enumerate(binary)), k) == pytest.approx(
        skm.ndcg_score([binary], [scores], k=k), abs=1e-12
    )
    # Graded gains: feed sklearn 2^g - 1 so its linear gain equals our exponential gain.
    graded = rng.integers(0, 4, size=n)
    assert ndcg_at_k(ranked, dict(enumerate(graded)), k) == pytest.approx(
        skm.ndcg_score([2.0**graded - 1], [scores], k=k), abs=1e-12
    )
    assert ndcg_at_k(ranked, dict(enumerate(graded)), k, linear=True) == pytest.approx(
        skm.ndcg_score([graded], [scores], k=k), abs=1e-12
    )


def test_catalog_coverage():
    # Distinct {a, b, c} out of 10.
    assert catalog_coverage([["a", "b"], ["b", "c"]], catalog_size=10) == pytest.approx(0.3)


def test_intra_list_diversity():
    group_of = {"a": "x", "b": "x", "c": "y", "d": "z"}
    # Pairs (a,b) same, (a,c) and (b,c) different -> 2/3.
    assert intra_list_diversity(["a", "b", "c"], group_of) == pytest.approx(2 / 3)
    assert intra_list_diversity(["a", "c", "d"], group_of) == 1.0
    assert intra_list_diversity(["a", "b"], group_of) == 0.0
    assert intra_list_diversity(["a"], group_of) == 0.0


def test_shuffled_reciprocal_rank_known_answers():
    assert shuffled_reciprocal_rank(1) == 1.0
    assert shuffled_reciprocal_rank(2) == pytest.approx((1 + 1 / 2) / 2)
    assert shuffled_reciprocal_rank(4, depth=2) == pytest.approx((1 + 1 / 2) / 4)  # ranks 3, 4 count 0
    # The mean over every order of 3 items, enumerated.
    orders = list(itertools.permutations(range(3)))
    assert shuffled_reciprocal_rank(3) == pytest.approx(np.mean([reciprocal_rank(o, {0}) for o in orders]))
    with pytest.raises(ValueError):
        shuffled_reciprocal_rank(0)


def test_paired_bootstrap_interval_known_answers():
    a = np.array([0.2, 0.5, 0.9, 0.4])
    assert paired_bootstrap_interval(a, a) == (0.0, 0.0, 0.0)  # identical lists: no difference at all
    assert paired_bootstrap_interval(a + 0.1, a) == pytest.approx((0.1, 0.1, 0.1))  # a constant shift
    rng = np.random.default_rng(1)
    noise = rng.normal(0.05, 0.2, 4000)  # the interval holds the true mean, and is about +-1.96 standard errors
    mean, low, high = paired_bootstrap_interval(noise, np.zeros(4000))
    assert low < 0.05 < high and high - low == pytest.approx(2 * 1.96 * 0.2 / np.sqrt(4000), rel=0.1)
    with pytest.raises(ValueError):
        paired_bootstrap_interval([], [])
