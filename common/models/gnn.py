"""GraphSAGE link prediction for "people you may know": node embeddings from a GNN over the social
graph at snapshot t, P(edge) from the embeddings of its two ends, trained on the edges that form after t.

    train = LinkGraph(features_t, edges_t)                  # users and friendships at t
    model = GraphSAGELinkPredictor().fit(train, formed_after_t, negatives=shown_not_formed,
                                         validation=(LinkGraph(features_v, edges_v), pairs_v, labels_v))
    z = model.embed(LinkGraph(features_now, edges_now))     # (n, hidden): same weights, today's graph
    p = model.score(z, users, candidates)                   # P(edge) per pair, e.g. friends of friends
    model.node_embeddings(graph).score(users, candidates)   # the same, numpy only (what serving keeps)

Encoder. `layers` SAGEConv layers (Hamilton et al. 2017) with mean aggregation, ReLU and dropout in
between, over the float features and a learned embedding of each categorical attribute (school,
employer, city: `LinkGraph.categories`): a node's embedding is a function of its own attributes and
its neighbours', not a lookup of its id, so the fitted weights embed any snapshot with the same
columns (the model is inductive: new users get embeddings without retraining). Full-batch: PyG's
neighbour samplers need pyg-lib / torch-sparse, which are not installed, while one full-graph pass over
a torch sparse CSR adjacency (the fused sparse-dense product, no per-edge message tensor) takes ~0.7 s an
epoch (2 threads; 1.1 s on one) for 100k nodes, 4M directed edges and 16 features, where PyG's per-edge
messages take twice the time and memory.

Decoder: logit = <z_u, z_v> + b. The dot product, not an MLP on z_u * z_v, because serving scores
precomputed embeddings: a dot product is one matrix product over a user's friends-of-friends candidates,
or an inner-product (ANN) index over all users, and is symmetric like friendship. (An MLP on the
Hadamard product can weight dimensions and interact them, but must run per pair at serving time.) The
scalar b only calibrates: it changes no ranking.

Training. Positives are the pairs whose edge forms after t; they are not in the message-passing graph,
so the encoder never sees its labels. Negatives are the optional hard negatives (candidates shown that
did not connect) plus, redrawn every epoch, `random_negatives` x p uniform non-edges (neither an edge at
t nor a positive). Loss: binary cross-entropy with logits over all of them; Adam, one full-batch step
per epoch. With `validation` the epoch with the best validation ROC-AUC (the chapter's offline metric)
is kept, stopping after `patience` epochs without improvement.

Features are standardised here, with the mean and std of the graph given to fit; the same statistics
apply to every graph embedded later.

Why not common.models.training.train_keeping_best_epoch: it runs mini-batches over fixed rows and keeps
the lowest eval loss for a fixed number of epochs; this model takes one full-graph step per epoch with
negatives redrawn each time, selects on ROC-AUC and stops early. Why not
torch_geometric.utils.negative_sampling: it draws from Python's global `random` (so torch.manual_seed does
not make fit deterministic) and re-sorts all edges on every call (~5 s per epoch at 2M edges).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from torch import nn
from torch_geometric.nn import SAGEConv

from common.evaluation.metrics import auc
from common.graph.proximity import adjacency
from common.models.node_embeddings import NodeEmbeddings


@dataclass(frozen=True)
class LinkGraph:
    """One snapshot of the social graph: what the encoder reads.

    features: (n, d) float node features, raw (the model standardises them with the statistics of the
    graph it was fitted on). edges: (2, m) int undirected edges, each given once (a pair given twice or
    in both directions counts once; self loops are dropped); the model makes them bidirectional.
    """

    features: np.ndarray
    edges: np.ndarray
    # (n, c) int categorical attributes (school, employer, city...), -1 unknown: each column gets a learned
    # embedding, so two people of the same school start from the same vector (homophily the hashed or
    # one-hot features of thousands of schools could not carry). A value unseen in fit reads as unknown.
    categories: np.ndarray | None = None

    def __post_init__(self):
        features, edges = np.asarray(self.features), np.asarray(self.edges)
        if self.categories is not None and np.asarray(self.categories).shape[:1] != (len(features),):
            raise ValueError(f"categories must be (n, c) with n = {len(features)} nodes")
        if features.ndim != 2:
            raise ValueError(f"features must be (n, d), got shape {features.shape}")
        if edges.ndim != 2 or edges.shape[0] != 2:
            raise ValueError(f"edges must be (2, m), got shape {edges.shape}")
        if edges.size and (edges.min() < 0 or edges.max() >= len(features)):
            raise ValueError(f"edges must be node indices in [0, {len(features)})")

    @property
    def n_nodes(self) -> int:
        return len(self.features)


class _SAGEEncoderDecoder(nn.Module):
    """(features (n, d), adjacency) -> embeddings (n, hidden); (embeddings, pairs (2, k)) -> logits (k,).
    Top-level class (not a closure) so the fitted estimator pickles."""

    def __init__(self, in_dim: int, hidden: int, layers: int, dropout: float, cardinalities: tuple[int, ...] = ()):
        super().__init__()
        # One table per categorical column; row 0 is "unknown" (value -1 or unseen in fit).
        self.tables = nn.ModuleList(nn.Embedding(size + 1, hidden) for size in cardinalities)
        widths = [in_dim + hidden * len(cardinalities)] + [hidden] * layers
        self.convs = nn.ModuleList(SAGEConv(a, b, aggr="mean") for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.dropout = dropout
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x, *(table(categories[:, j]) for j, table in enumerate(self.tables))], dim=1)
        for i, conv in enumerate(self.convs):
            x = conv(x, adjacency)
            if i < len(self.convs) - 1:  # the last layer stays linear: embeddings may be negative
                x = F.dropout(F.relu(x), self.dropout, self.training)
        return x

    def logits(self, embeddings: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        return (embeddings[pairs[0]] * embeddings[pairs[1]]).sum(dim=1) + self.bias


class GraphSAGELinkPredictor(BaseEstimator):
    """GraphSAGE encoder + dot-product decoder, scikit-learn style (see the module docstring).

    fit(graph, positives, negatives=None, validation=None) -> self. Learned state: module_ (the torch
    module, eval mode), feature_mean_ / feature_scale_, n_features_in_, cardinalities_ (the categories'
    sizes seen in fit), train_loss_ (per epoch),
    history_ (validation ROC-AUC per epoch; empty without validation), best_epoch_ (1-based; the last
    epoch run without validation, 0 when epochs=0).
    """

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 2,
        epochs: int = 60,
        learning_rate: float = 0.01,
        random_negatives: float = 1.0,
        patience: int = 8,
        seed: int = 0,
        threads: int | None = None,
        dropout: float = 0.0,
    ):
        self.hidden = hidden
        self.layers = layers
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.random_negatives = random_negatives
        self.patience = patience
        self.seed = seed
        self.threads = threads
        self.dropout = dropout

    def fit(
        self,
        graph: LinkGraph,
        positives: np.ndarray,
        negatives: np.ndarray | None = None,
        validation: tuple[LinkGraph, np.ndarray, np.ndarray] | None = None,
    ) -> GraphSAGELinkPredictor:
        """graph: node features and message-passing edges at snapshot t. positives: (2, p) node pairs whose
        edge forms after t. negatives: optional (2, q) hard negatives (candidate pairs that did not form);
        `random_negatives` x p uniform non-edges are added, redrawn every epoch. validation: (graph at the
        validation snapshot, pairs (2, r), labels (r,)): the epoch with the best ROC-AUC on it is kept."""
        if self.layers < 1:
            raise ValueError(f"layers must be >= 1, got {self.layers}")
        torch.manual_seed(self.seed)
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        rng = np.random.default_rng(self.seed)

        positives = _pairs(positives, graph.n_nodes, "positives")
        if positives.shape[1] == 0:
            raise ValueError("no positives: give at least one pair whose edge forms after t")
        negatives = _pairs(np.zeros((2, 0)) if negatives is None else negatives, graph.n_nodes, "negatives")
        self._fit_standardiser(graph.features)
        categories = np.zeros((graph.n_nodes, 0), np.int64) if graph.categories is None else graph.categories
        self.cardinalities_ = tuple(int(max(np.max(column, initial=-1), -1)) + 1 for column in np.asarray(categories).T)
        self.module_ = _SAGEEncoderDecoder(
            self.n_features_in_, self.hidden, self.layers, self.dropout, self.cardinalities_
        )
        # A random negative must be neither an edge at t nor a positive (it would be labelled both ways).
        sampler = _NonEdgeSampler(graph.n_nodes, np.hstack([np.asarray(graph.edges, dtype=np.int64), positives]))
        fixed_pairs = torch.from_numpy(np.hstack([positives, negatives]))
        fixed_labels = torch.cat([torch.ones(positives.shape[1]), torch.zeros(negatives.shape[1])])

        def training_pairs() -> tuple[torch.Tensor, torch.Tensor]:
            random_pairs = torch.from_numpy(sampler.draw(rng, round(self.random_negatives * positives.shape[1])))
            labels = torch.cat([fixed_labels, torch.zeros(random_pairs.shape[1])])
            return torch.cat([fixed_pairs, random_pairs], dim=1), labels

        validate = self._validation_auc(validation) if validation is not None else None
        self._train(self._inputs(graph), training_pairs, validate)
        return self

    def _fit_standardiser(self, features: np.ndarray) -> None:
        features = np.asarray(features, dtype=np.float64)
        self.n_features_in_ = features.shape[1]
        self.feature_mean_ = features.mean(axis=0) if len(features) else np.zeros(self.n_features_in_)
        scale = features.std(axis=0) if len(features) else np.ones(self.n_features_in_)
        self.feature_scale_ = np.where(scale > 0, scale, 1.0)  # a constant feature stays 0, not NaN

    def _train(self, inputs, training_pairs, validate) -> None:
        """One full-batch Adam step per epoch on freshly drawn negatives. With `validate` (the current
        validation ROC-AUC), keep the best epoch's weights and stop after `patience` epochs without a better
        one; without it, keep the last epoch. Sets train_loss_, history_, best_epoch_; ends in eval mode."""
        optimizer = torch.optim.Adam(self.module_.parameters(), lr=self.learning_rate)
        self.train_loss_, self.history_, self.best_epoch_ = [], [], 0
        best_state = None
        for epoch in range(1, self.epochs + 1):
            self.train_loss_.append(self._step(optimizer, inputs, *training_pairs()))
            if validate is None:
                self.best_epoch_ = epoch
                continue
            self.history_.append(validate())
            if self.history_[-1] > max(self.history_[:-1], default=-np.inf):
                self.best_epoch_ = epoch
                best_state = {k: v.detach().clone() for k, v in self.module_.state_dict().items()}
            elif epoch - self.best_epoch_ >= self.patience:
                break  # no better epoch for `patience` epochs
        if best_state is not None:
            self.module_.load_state_dict(best_state)
        self.module_.eval()

    def embed(self, graph: LinkGraph) -> np.ndarray:
        """(n, hidden) float32 node embeddings of any snapshot with the training feature columns."""
        self._check_fitted()
        return self._embed(self._inputs(graph)).numpy()

    def score(self, embeddings: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """P(edge) of each pair (u[i], v[i]) from their embeddings, in [0, 1]."""
        self._check_fitted()
        return NodeEmbeddings(np.asarray(embeddings, dtype=np.float32), self._bias()).score(u, v)

    def node_embeddings(self, graph: LinkGraph) -> NodeEmbeddings:
        """The embeddings of a snapshot with the decoder's bias: what scores its pairs without torch."""
        return NodeEmbeddings(self.embed(graph), self._bias())

    def _bias(self) -> float:
        return float(self.module_.bias.detach())

    def predict_pairs(self, graph: LinkGraph, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """embed(graph), then score the pairs: P(edge) per pair."""
        return self.score(self.embed(graph), u, v)

    def _step(self, optimizer: torch.optim.Optimizer, inputs, pairs: torch.Tensor, labels: torch.Tensor) -> float:
        """One full-batch Adam step; the training loss."""
        self.module_.train()
        loss = F.binary_cross_entropy_with_logits(self.module_.logits(self.module_(*inputs), pairs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    def _validation_auc(self, validation: tuple[LinkGraph, np.ndarray, np.ndarray]):
        """A function of no arguments: the current model's ROC-AUC on the validation pairs. The graph's
        tensors are built once, not every epoch."""
        graph, pairs, labels = validation
        pairs = _pairs(pairs, graph.n_nodes, "validation pairs")
        labels = np.asarray(labels).ravel()
        if len(labels) != pairs.shape[1]:
            raise ValueError(f"{len(labels)} validation labels for {pairs.shape[1]} pairs")
        inputs = self._inputs(graph)
        return lambda: auc(labels, self.score(self._embed(inputs).numpy(), pairs[0], pairs[1]))

    def _embed(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        self.module_.eval()
        with torch.inference_mode():
            return self.module_(*inputs)

    def _inputs(self, graph: LinkGraph) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(standardised features (n, d) float32, bidirectional adjacency as a torch sparse CSR tensor,
        category indices (n, c): value + 1, 0 for unknown or unseen in fit)."""
        features = np.asarray(graph.features, dtype=np.float64)
        if features.shape[1] != self.n_features_in_:
            raise ValueError(f"graph has {features.shape[1]} features, the model was fitted on {self.n_features_in_}")
        x = torch.from_numpy(((features - self.feature_mean_) / self.feature_scale_).astype(np.float32))
        sizes = np.asarray(self.cardinalities_, dtype=np.int64)
        categories = np.zeros((graph.n_nodes, 0), np.int64) if graph.categories is None else graph.categories
        categories = np.asarray(categories, dtype=np.int64).reshape(graph.n_nodes, -1)
        if categories.shape[1] != len(sizes):
            raise ValueError(f"graph has {categories.shape[1]} category columns, the model was fitted on {len(sizes)}")
        index = np.where((categories >= 0) & (categories < sizes), categories + 1, 0)
        return x, _torch_adjacency(graph), torch.from_numpy(index)

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")


class _NonEdgeSampler:
    """Uniform node pairs (u != v) that are not among the known edges (in either direction).

    Known pairs are kept as sorted keys min * n + max, so a draw is a vectorised rejection step (random
    pairs, then a binary search) instead of re-sorting every edge per epoch."""

    def __init__(self, n_nodes: int, known: np.ndarray):
        self.n_nodes = n_nodes
        low, high = np.minimum(known[0], known[1]), np.maximum(known[0], known[1])
        self.known = np.unique(low[low != high] * n_nodes + high[low != high])
        self.n_non_edges = n_nodes * (n_nodes - 1) // 2 - len(self.known)

    def draw(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """(2, k) int64 non-edges, drawn with replacement."""
        if k > 0 and self.n_non_edges <= 0:
            raise ValueError("the graph has no non-edges to draw random negatives from")
        drawn = np.zeros((2, 0), dtype=np.int64)
        while drawn.shape[1] < k:
            # Oversample by the share of non-edges (tiny graphs in tests are dense; real ones are not).
            share = self.n_non_edges / (self.n_nodes * (self.n_nodes - 1) / 2)
            pairs = rng.integers(0, self.n_nodes, (2, int((k - drawn.shape[1]) * 1.2 / share) + 16))
            drawn = np.hstack([drawn, pairs[:, self._is_non_edge(pairs)]])
        return drawn[:, :k]

    def _is_non_edge(self, pairs: np.ndarray) -> np.ndarray:
        low, high = np.minimum(pairs[0], pairs[1]), np.maximum(pairs[0], pairs[1])
        keys = low * self.n_nodes + high
        position = np.minimum(np.searchsorted(self.known, keys), max(len(self.known) - 1, 0))
        known = self.known[position] == keys if len(self.known) else np.zeros(len(keys), dtype=bool)
        return (low != high) & ~known


def _torch_adjacency(graph: LinkGraph) -> torch.Tensor:
    """The graph's symmetric 0/1 adjacency as a torch sparse CSR tensor: SAGEConv then aggregates with
    one fused sparse-dense product (mean over neighbours) instead of an (edges, width) message tensor."""
    edges = np.asarray(graph.edges, dtype=np.int64)
    matrix = adjacency(graph.n_nodes, edges[0], edges[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta": it is what we use
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)),
            torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(matrix.data.astype(np.float32)),
            size=matrix.shape,
            check_invariants=False,  # built by scipy, canonical by construction
        )


def _pairs(pairs: np.ndarray, n_nodes: int, name: str) -> np.ndarray:
    """(2, k) int64 node pairs, checked."""
    pairs = np.asarray(pairs, dtype=np.int64)
    if pairs.ndim != 2 or pairs.shape[0] != 2:
        raise ValueError(f"{name} must be (2, k) node pairs, got shape {pairs.shape}")
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n_nodes):
        raise ValueError(f"{name} must be node indices in [0, {n_nodes})")
    return pairs
