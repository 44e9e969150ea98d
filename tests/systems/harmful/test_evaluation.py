"""Known answers for harmful content's thresholds and decisions (systems/harmful/evaluation.py), on hand-made
scores."""

import numpy as np
import pytest

from systems.harmful.evaluation import (
    NEVER,
    Thresholds,
    actions,
    choose_thresholds,
    precision_interval,
    removal_reliability,
)


def test_the_removal_threshold_is_the_lowest_score_whose_precision_holds_from_there_up():
    # Scores high to low: + + + - + + - - ; precision from the top: 1, 1, 1, .75, .8, .83, .71, .63
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])[:, None]
    y = np.array([1, 1, 1, 0, 1, 1, 0, 0])[:, None]
    thresholds = choose_thresholds(y, p, remove_precision=0.95, demote_precision=0.8)
    assert thresholds.remove[0] == 0.7  # at 0.6 precision falls to 0.75
    # 0.8 holds at 0.4 (5 of 6) and at 0.5 (4 of 5), not at 0.6 (3 of 4): a dip up the list forbids 0.4.
    assert thresholds.demote[0] == 0.7
    assert thresholds.f1[0] == 0.4  # 5 of 6 flagged right, 5 of 5 positives found: F1 0.91


def test_a_category_whose_precision_never_holds_is_never_acted_on():
    """The rule is conservative: precision must hold at every higher threshold too, so a benign post at the
    very top keeps the category from ever being acted on (0.8 alone would reach 0.5: 1 of 2)."""
    p = np.array([[0.9], [0.8], [0.1]])
    y = np.array([[0], [1], [0]])
    thresholds = choose_thresholds(y, p, remove_precision=0.95, demote_precision=0.5)
    assert thresholds.remove[0] == NEVER and thresholds.demote[0] == NEVER
    assert choose_thresholds(np.zeros((3, 1)), p, 0.95, 0.5).remove[0] == NEVER  # no positives at all


def test_actions_take_the_strongest_reason():
    thresholds = Thresholds(remove=np.array([0.9, NEVER]), demote=np.array([0.5, 0.2]), f1=np.array([0.5, 0.2]))
    p = np.array([[0.95, 0.1], [0.6, 0.1], [0.1, 0.6], [0.1, 0.1]])
    action, reason = actions(p, thresholds)
    assert action.tolist() == [2, 1, 1, 0]
    assert reason[:3].tolist() == [0, 0, 1]  # 0.6 / 0.2 beats 0.1 / 0.5


def descending_scores(n: int) -> np.ndarray:
    return np.linspace(0.99, 0.01, n)[:, None]


def test_the_lower_bound_vouches_for_a_precision_only_with_enough_removals():
    """All k of k right: the Clopper-Pearson lower bound at 95% is 0.05 ** (1 / k), which first reaches 0.95
    at k = 59."""
    for right, expected in ((58, NEVER), (59, 58), (80, 79)):
        y = np.r_[np.ones(right), np.zeros(40)][:, None]
        p = descending_scores(len(y))
        thresholds = choose_thresholds(y, p, remove_precision=0.95, demote_precision=0.5, remove_confidence=0.95)
        assert thresholds.remove[0] == (NEVER if expected == NEVER else p[expected, 0])


def test_the_lower_bound_is_walked_from_the_top_and_its_first_failure_ends_the_walk():
    """60 right, 3 wrong, 300 right: the walk down passes at 59 and 60 flagged, fails at 61 (60 of 61), and stops
    there, though the bound over the 363 posts (360 right) would pass again: a threshold that passes after one
    that failed may pass by luck, among the many tried. The point estimate's precision never falls below 0.95
    (60 of 63 is 0.952) on the way down to the 300."""
    y = np.r_[np.ones(60), np.zeros(3), np.ones(300), np.zeros(100)][:, None]
    p = descending_scores(len(y))
    vouched = choose_thresholds(y, p, 0.95, 0.5, remove_confidence=0.95).remove[0]
    assert (p[:, 0] >= vouched).sum() == 60
    point = choose_thresholds(y, p, 0.95, 0.5).remove[0]
    assert (p[:, 0] >= point).sum() >= 363


def test_a_wrong_post_at_the_top_stops_both_rules():
    y = np.r_[0, np.ones(300), np.zeros(100)][:, None]
    p = descending_scores(len(y))
    assert choose_thresholds(y, p, 0.95, 0.5).remove[0] == NEVER
    assert choose_thresholds(y, p, 0.95, 0.5, remove_confidence=0.95).remove[0] == NEVER


def test_removal_reliability_on_perfect_and_on_uninformative_scores():
    rng = np.random.default_rng(0)
    truth = (rng.random((4000, 2)) < 0.2).astype(float)
    perfect = removal_reliability(truth, truth.copy(), ["a", "b"], 1000, 0.95, 0.95, draws=5, seed=0)
    assert set(perfect["a"].values()) == {1.0}  # always a threshold, its precision reached, every positive removed
    noise = removal_reliability(truth, rng.random((4000, 2)), ["a", "b"], 1000, 0.95, 0.95, draws=5, seed=0)
    assert noise["b"]["with a threshold"] == 0.0 and noise["b"]["mean recall"] == 0.0


def test_removal_reliability_judges_the_promise_not_the_rules_target():
    """A rule targeting precision 0 removes every post: its precision is the share of harmful posts, 0.25. It
    keeps its own target; a promise of 0.5 it never keeps."""
    truth = np.tile([1.0, 0.0, 0.0, 0.0], 1000)[:, None]
    p = np.random.default_rng(0).random(truth.shape)
    own = removal_reliability(truth, p, ["a"], 1000, 0.0, None, draws=5, seed=0)["a"]
    judged = removal_reliability(truth, p, ["a"], 1000, 0.0, None, draws=5, seed=0, promise=0.5)["a"]
    assert own["with a threshold"] == judged["with a threshold"] == 1.0
    assert own["precision reached"] == 1.0 and judged["precision reached"] == 0.0
    assert judged["mean precision"] == pytest.approx(0.25, abs=0.01)


def test_the_precision_interval_is_clopper_pearsons():
    # All of n right: the lower end solves p^n = 0.025 (exact); none right: the upper end solves (1 - p)^n = 0.025.
    assert precision_interval(10, 10) == pytest.approx((0.025 ** (1 / 10), 1.0))
    assert precision_interval(0, 10) == pytest.approx((0.0, 1 - 0.025 ** (1 / 10)))
    low, high = precision_interval(40, 43)  # the width a few dozen removals leave
    assert low < 0.85 < 0.95 < high < 1.0
    assert np.isnan(precision_interval(0, 0)).all()
