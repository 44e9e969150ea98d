"""Contrastive losses: learn an embedding where each item is closest to its positive among a batch of
others (the chapter's "contrastive learning": distances -> softmax -> cross entropy against the labels).

    loss = symmetric_info_nce(queries, videos, same, temperature)   # CLIP: two towers, pairs (q_i, v_i)
    loss = nt_xent(view_a, view_b, temperature)                      # SimCLR: two augmented views per image
    loss = nt_xent(view_a, view_b, temperature, same)                # pairs of one tower (query image, click)

Every other row of the batch is a negative (in-batch negatives: no sampling, and the batch size sets how
many). A `same` mask takes out rows that are not truly negative: two pairs that share an item, or two photos
of one object in a batch of click pairs, would otherwise be pushed apart.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symmetric_info_nce(a: torch.Tensor, b: torch.Tensor, same: torch.Tensor | None, temperature: float) -> torch.Tensor:
    """CLIP's loss. a, b: (B, d) unit rows of two towers, row i a positive pair; each a_i must pick b_i among
    the batch's b, and each b_i its a_i. same: (B, B) bool, True off the diagonal where rows i and j share
    an item (masked: not negatives), or None."""
    logits = a @ b.T / temperature  # (B, B): a_i against b_j
    if same is not None:
        logits = logits.masked_fill(same, float("-inf"))
    labels = torch.arange(len(a))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float, same: torch.Tensor | None = None) -> torch.Tensor:
    """SimCLR's normalised temperature-scaled cross entropy (Chen et al. 2020). a, b: (B, d) unit rows of
    one tower, (a_i, b_i) two views of one image. Each of the 2B views must pick its partner among the other
    2B - 1 (the other views of both halves are negatives, unlike CLIP's loss, where a's only compete with
    b's). same: (B, B) bool, True where images i and j are one item (masked in all four blocks), or None."""
    n = len(a)
    z = torch.cat([a, b])  # (2B, d)
    logits = z @ z.T / temperature  # (2B, 2B)
    excluded = torch.eye(2 * n, dtype=torch.bool)  # a view is not its own negative
    if same is not None:
        off_diagonal = same & ~torch.eye(n, dtype=torch.bool)
        excluded |= off_diagonal.repeat(2, 2)
    logits = logits.masked_fill(excluded, float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])  # view i's partner: i + B, and back
    return F.cross_entropy(logits, partner)
