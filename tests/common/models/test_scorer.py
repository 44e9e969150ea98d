import numpy as np
import pytest

from common.models.scorer import score


class OneHead:
    def predict_proba(self, X):
        p = np.asarray(X, dtype=float)
        return np.column_stack([1 - p, p])


class ThreeHeads(OneHead):
    def predict_heads(self, X):
        p = np.asarray(X, dtype=float)
        return {"engage": p, "satisfy": np.full(len(p), 0.5), "value": 2 * p}


X = [0.2, 0.5, 0.8]


def test_known_answers_for_every_combination():
    np.testing.assert_allclose(score(OneHead(), X, {"combine": "probability"}), X)
    np.testing.assert_allclose(
        score(ThreeHeads(), X, {"combine": "product", "heads": ["engage", "satisfy"]}), [0.1, 0.25, 0.4]
    )
    weights = {"engage": 1.0, "value": 0.5}
    np.testing.assert_allclose(score(ThreeHeads(), X, {"combine": "weighted_sum", "weights": weights}), [0.4, 1.0, 1.6])
    # odds(engage) x P(positive | engage); a one-head model is its own engagement, nothing after it.
    np.testing.assert_allclose(score(ThreeHeads(), X, {"combine": "engage_odds"}), [0.125, 0.5, 2.0])
    np.testing.assert_allclose(score(OneHead(), X, {"combine": "engage_odds"}), [0.25, 1.0, 4.0])


def test_odds_keep_the_order_where_probabilities_saturate():
    # Two items a sampled-negatives classifier puts at 0.999 and 0.9999: 10x apart in odds.
    odds = score(OneHead(), [0.999, 0.9999], {"combine": "engage_odds"})
    assert odds[1] / odds[0] == pytest.approx(10.0, rel=0.01)


def test_unknown_combination_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown score combination"):
        score(OneHead(), X, {"combine": "max"})
