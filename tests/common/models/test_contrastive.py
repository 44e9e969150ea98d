"""common.models.contrastive: CLIP's symmetric InfoNCE and SimCLR's NT-Xent give the cross entropies worked out
by hand on tiny batches, the `same` mask takes exactly the masked rows out of the negatives, and the losses
reward aligned, well separated pairs."""

import math

import pytest
import torch

from common.models.contrastive import nt_xent, symmetric_info_nce

# Two pairs of unit vectors in 2-d with round inner products: a0.b0 = 0.8, a0.b1 = 0.6, a1.b0 = 0.6,
# a1.b1 = 0.8, a0.a1 = 0, b0.b1 = 0.96.
A = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
B = torch.tensor([[0.8, 0.6], [0.6, 0.8]])


def _cross_entropy(positive: float, negatives: list[float], temperature: float) -> float:
    """-log softmax of the positive's similarity among itself and the negatives, written out."""
    terms = [math.exp(s / temperature) for s in [positive, *negatives]]
    return -math.log(terms[0] / sum(terms))


def _dot(u: torch.Tensor, v: torch.Tensor) -> float:
    return float(sum(x * y for x, y in zip(u.tolist(), v.tolist(), strict=True)))


# --- CLIP: symmetric InfoNCE --------------------------------------------------


def test_symmetric_info_nce_on_two_pairs_is_the_hand_computed_cross_entropy():
    """Each a_i picks b_i among the b's and each b_i picks a_i among the a's; the loss is the mean of both."""
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    b = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
    # a @ b.T = [[0.8, 0.0], [0.96, 0.8]]: a_0 against b_1 is 0.0, a_1 against b_0 is 0.96.
    t = 0.5
    rows = (_cross_entropy(0.8, [0.0], t) + _cross_entropy(0.8, [0.96], t)) / 2  # a_0 vs b_1; a_1 vs b_0
    columns = (_cross_entropy(0.8, [0.96], t) + _cross_entropy(0.8, [0.0], t)) / 2  # b_0 vs a_1; b_1 vs a_0
    assert symmetric_info_nce(a, b, None, t).item() == pytest.approx((rows + columns) / 2, rel=1e-6)


def test_symmetric_info_nce_on_three_pairs_matches_the_written_out_sum():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    b = torch.tensor([[0.8, 0.6], [0.6, 0.8], [-0.8, 0.6]])
    t = 0.2
    sims = [[_dot(a[i], b[j]) for j in range(3)] for i in range(3)]
    rows = [_cross_entropy(sims[i][i], [sims[i][j] for j in range(3) if j != i], t) for i in range(3)]
    columns = [_cross_entropy(sims[j][j], [sims[i][j] for i in range(3) if i != j], t) for j in range(3)]
    expected = (sum(rows) / 3 + sum(columns) / 3) / 2
    assert symmetric_info_nce(a, b, None, t).item() == pytest.approx(expected, rel=1e-6)


def test_symmetric_info_nce_mask_removes_exactly_the_masked_negatives():
    """Pairs 0 and 1 share an item: a_0 no longer competes with b_1 (nor a_1 with b_0, nor the columns), while
    pair 2 keeps every negative."""
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    b = torch.tensor([[0.8, 0.6], [0.6, 0.8], [-0.8, 0.6]])
    t = 0.2
    same = torch.zeros(3, 3, dtype=torch.bool)
    same[0, 1] = same[1, 0] = True
    sims = [[_dot(a[i], b[j]) for j in range(3)] for i in range(3)]
    masked = {(0, 1), (1, 0)}
    rows = [
        _cross_entropy(sims[i][i], [sims[i][j] for j in range(3) if j != i and (i, j) not in masked], t)
        for i in range(3)
    ]
    columns = [
        _cross_entropy(sims[j][j], [sims[i][j] for i in range(3) if i != j and (i, j) not in masked], t)
        for j in range(3)
    ]
    expected = (sum(rows) / 3 + sum(columns) / 3) / 2

    loss = symmetric_info_nce(a, b, same, t).item()

    assert loss == pytest.approx(expected, rel=1e-6)
    assert loss < symmetric_info_nce(a, b, None, t).item()  # fewer negatives, lower loss


def test_symmetric_info_nce_with_every_negative_masked_is_zero():
    """Nothing left to compete with: each row's softmax is its positive alone."""
    same = ~torch.eye(2, dtype=torch.bool)
    assert symmetric_info_nce(A, B, same, 0.5).item() == pytest.approx(0.0, abs=1e-7)


# --- SimCLR: NT-Xent ------------------------------------------------------------


def test_nt_xent_on_two_pairs_is_the_hand_computed_cross_entropy():
    """Each of the 4 views picks its partner among the 3 others (the other view of its own half competes too)."""
    t = 0.5
    a0 = _cross_entropy(0.8, [0.0, 0.6], t)  # partner b0; negatives a1, b1
    a1 = _cross_entropy(0.8, [0.0, 0.6], t)  # partner b1; negatives a0, b0
    b0 = _cross_entropy(0.8, [0.6, 0.96], t)  # partner a0; negatives a1, b1
    b1 = _cross_entropy(0.8, [0.6, 0.96], t)  # partner a1; negatives a0, b0
    assert nt_xent(A, B, t).item() == pytest.approx((a0 + a1 + b0 + b1) / 4, rel=1e-6)


def test_nt_xent_differs_from_clip_by_the_same_half_negatives():
    """CLIP's loss on the same batch leaves out a0-a1 and b0-b1: it is the cross entropy without them."""
    t = 0.5
    clip = _cross_entropy(0.8, [0.6], t)  # every row and column: the positive 0.8 against one negative 0.6
    assert symmetric_info_nce(A, B, None, t).item() == pytest.approx(clip, rel=1e-6)
    assert nt_xent(A, B, t).item() > clip


def test_nt_xent_mask_removes_the_pairs_negatives_in_all_four_blocks():
    """Images 0 and 1 are one item: a0 loses a1 and b1 as negatives, b0 loses a1 and b1, and so on; image 2's
    views keep all four of their negatives."""
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    b = torch.tensor([[0.8, 0.6], [0.6, 0.8], [-0.8, 0.6]])
    t = 0.2
    same = torch.zeros(3, 3, dtype=torch.bool)
    same[0, 1] = same[1, 0] = True
    views = {f"a{i}": a[i] for i in range(3)} | {f"b{i}": b[i] for i in range(3)}
    partner = {"a0": "b0", "a1": "b1", "a2": "b2", "b0": "a0", "b1": "a1", "b2": "a2"}
    item = {name: int(name[1]) for name in views}
    one_item = {(0, 1), (1, 0)}

    def expected(mask: bool) -> float:
        losses = []
        for name, view in views.items():
            negatives = [
                _dot(view, other)
                for other_name, other in views.items()
                if other_name not in (name, partner[name]) and not (mask and (item[name], item[other_name]) in one_item)
            ]
            losses.append(_cross_entropy(_dot(view, views[partner[name]]), negatives, t))
        return sum(losses) / len(losses)

    assert nt_xent(a, b, t).item() == pytest.approx(expected(mask=False), rel=1e-6)
    assert nt_xent(a, b, t, same).item() == pytest.approx(expected(mask=True), rel=1e-6)
    assert expected(mask=True) < expected(mask=False)


def test_nt_xent_ignores_the_diagonal_of_same():
    """`same` is True on the diagonal when built as "rows share an item" (a row shares its own): the partner,
    the positive itself, must not be masked by it."""
    same_with_diagonal = torch.eye(2, dtype=torch.bool)
    assert nt_xent(A, B, 0.5, same_with_diagonal).item() == pytest.approx(nt_xent(A, B, 0.5).item(), rel=1e-6)


def test_nt_xent_with_every_negative_masked_is_zero():
    assert nt_xent(A, B, 0.5, torch.ones(2, 2, dtype=torch.bool)).item() == pytest.approx(0.0, abs=1e-7)


# --- what the losses reward -------------------------------------------------------


@pytest.mark.parametrize("loss", [lambda a, b, t: symmetric_info_nce(a, b, None, t), nt_xent], ids=["clip", "nt_xent"])
def test_aligned_well_separated_views_at_low_temperature_give_a_loss_near_zero(loss):
    views = torch.eye(4)  # each pair identical, orthogonal to every other
    assert loss(views, views.clone(), 0.05).item() < 1e-6


@pytest.mark.parametrize("loss", [lambda a, b, t: symmetric_info_nce(a, b, None, t), nt_xent], ids=["clip", "nt_xent"])
def test_swapping_the_partners_raises_the_loss(loss):
    """Partners paired with the wrong rows: each view's positive is now orthogonal to it and a negative equals it."""
    views = torch.eye(4)
    aligned = loss(views, views.clone(), 0.1).item()
    swapped = loss(views, views[[1, 0, 3, 2]], 0.1).item()
    assert swapped > aligned + 5  # the positive sits 10 logits below a negative: about -log(e^-10) = 10
