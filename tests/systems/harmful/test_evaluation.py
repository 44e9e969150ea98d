"""Known answers for harmful content's thresholds and decisions (systems/harmful/evaluation.py), on hand-made
scores."""

import numpy as np

from systems.harmful.evaluation import NEVER, Thresholds, actions, choose_thresholds


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
