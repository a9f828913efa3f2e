"""The artist recommenders, on a users x items confidence matrix (CSR, float32).

Every model scores items from a user's *history row*, so one fitted model serves users it
was trained on and users whose history changed since (ALS folds the row in exactly as its
own user step would). Scores are dense `(len(rows), n_items)` float32 arrays; callers mask
what must not be recommended.

- `most_popular`: how many users interacted with the item.
- `item_knn`: cosine item-item similarity with shrinkage, top-k neighbours per item.
- `ease`: EASE^R (Steck 2019), a closed-form item-item model, on the `max_items` most
  popular items (the inverse is dense: n³ work, n² memory).
- `als`: `implicit`'s alternating least squares (Hu, Koren, Volinsky confidence weighting).
- `content`: the user's tag profile (their items' tags, tf-idf weighted) against each item's.
- `hybrid`: a weighted sum of the components' per-user standardised scores, one weight
  vector for cold-start users and one for the rest.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

F32 = NDArray[np.float32]
Csr: TypeAlias = sp.csr_matrix  # scipy ships no types: an alias of Any to mypy
COMPONENTS = ("most_popular", "item_knn", "ease", "als", "content")
COLD_START_MAX_INTERACTIONS = 5  # the cold-start slice: ≤ 5 training interactions


def binary(x: Csr) -> Csr:
    b = x.copy().astype(np.float32)
    b.data[:] = 1.0
    return b


def log_confidence(x: Csr) -> Csr:
    """Play counts are heavy-tailed: log1p keeps a 500-play artist from drowning the rest."""
    c = x.copy().astype(np.float32)
    np.log1p(c.data, out=c.data)
    return c


def standardise(scores: F32) -> F32:
    """Per-row z-scores, so components on different scales can be blended."""
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    out: F32 = ((scores - mean) / (std + 1e-6)).astype(np.float32)
    return out


@dataclass
class MostPopular:
    counts: F32 = field(default_factory=lambda: np.zeros(0, np.float32))

    def fit(self, x: Csr, item_tags: Csr | None = None) -> MostPopular:
        self.counts = np.asarray(binary(x).sum(axis=0)).ravel().astype(np.float32)
        return self

    def score(self, rows: Csr) -> F32:
        return np.broadcast_to(self.counts, (rows.shape[0], len(self.counts))).copy()


@dataclass
class ItemKNN:
    k: int = 100
    shrink: float = 10.0
    similarity: Csr | None = None  # items x items, column j = neighbours of j

    def fit(self, x: Csr, item_tags: Csr | None = None) -> ItemKNN:
        b = binary(x).tocsc()
        gram = (b.T @ b).tocsr().astype(np.float32)
        gram.setdiag(0)
        gram.eliminate_zeros()
        norms = np.sqrt(np.asarray(b.sum(axis=0)).ravel()).astype(np.float32)
        coo = gram.tocoo()
        coo.data = coo.data / (norms[coo.row] * norms[coo.col] + self.shrink)
        self.similarity = _top_k_per_column(coo.tocsc(), self.k)
        return self

    def score(self, rows: Csr) -> F32:
        assert self.similarity is not None
        return np.asarray((binary(rows) @ self.similarity).todense(), dtype=np.float32)


def _top_k_per_column(m: sp.csc_matrix, k: int) -> Csr:
    """Keep the k largest entries of every column."""
    m.sort_indices()
    rows, cols, vals = [], [], []
    for j in range(m.shape[1]):
        start, end = m.indptr[j], m.indptr[j + 1]
        if start == end:
            continue
        data = m.data[start:end]
        idx = m.indices[start:end]
        if end - start > k:
            keep = np.argpartition(-data, k)[:k]
            data, idx = data[keep], idx[keep]
        rows.append(idx)
        vals.append(data)
        cols.append(np.full(len(idx), j, dtype=np.int32))
    if not rows:
        return sp.csr_matrix(m.shape, dtype=np.float32)
    out = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=m.shape,
        dtype=np.float32,
    )
    return out


@dataclass
class Ease:
    l2: float = 100.0
    max_items: int = 5000
    items: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    weights: F32 = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    n_items: int = 0

    def fit(self, x: Csr, item_tags: Csr | None = None) -> Ease:
        b = binary(x)
        self.n_items = b.shape[1]
        counts = np.asarray(b.sum(axis=0)).ravel()
        order = np.argsort(-counts, kind="stable")
        self.items = np.sort(order[: min(self.max_items, int((counts > 0).sum()))])
        if len(self.items) == 0:
            self.weights = np.zeros((0, 0), np.float32)
            return self
        sub = b[:, self.items]
        gram = np.asarray((sub.T @ sub).todense(), dtype=np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        p = np.linalg.inv(gram)
        w = p / (-np.diag(p))
        w[np.diag_indices_from(w)] = 0.0
        self.weights = w.astype(np.float32)
        return self

    def score(self, rows: Csr) -> F32:
        sub = binary(rows)[:, self.items]
        part = np.asarray(sub @ self.weights, dtype=np.float32)
        out = np.empty((rows.shape[0], self.n_items), dtype=np.float32)
        out[:] = part.min(axis=1, keepdims=True) if part.size else 0.0
        out[:, self.items] = part
        return out


@dataclass
class Als:
    factors: int = 64
    regularization: float = 1.0
    alpha: float = 10.0
    iterations: int = 15
    seed: int = 0
    item_factors: F32 = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    user_factors: F32 = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def fit(self, x: Csr, item_tags: Csr | None = None) -> Als:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        # implicit parallelises itself; a multi-threaded BLAS underneath only oversubscribes.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                calculate_training_loss=False,
            )
            model.fit(log_confidence(x), show_progress=False)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        return self

    def fold_in(self, rows: Csr) -> F32:
        """User vectors for history rows: the exact ALS user step, u = (YᵀCY + λI)⁻¹ YᵀCp."""
        y = self.item_factors.astype(np.float64)
        yty = y.T @ y
        reg = self.regularization * np.eye(y.shape[1])
        conf = log_confidence(rows)
        out = np.zeros((rows.shape[0], y.shape[1]), dtype=np.float32)
        for i in range(rows.shape[0]):
            start, end = conf.indptr[i], conf.indptr[i + 1]
            if start == end:
                continue
            idx = conf.indices[start:end]
            c = self.alpha * conf.data[start:end].astype(np.float64)
            yi = y[idx]
            a = yty + (yi.T * c) @ yi + reg
            out[i] = np.linalg.solve(a, yi.T @ (1.0 + c))
        return out

    def score(self, rows: Csr) -> F32:
        return np.asarray(self.fold_in(rows) @ self.item_factors.T, dtype=np.float32)

    def score_users(self, rows: Csr, users: NDArray[np.int64]) -> F32:
        """Users of the training matrix (rows = their training history): their own factors."""
        return np.asarray(self.user_factors[users] @ self.item_factors.T, dtype=np.float32)


@dataclass
class Content:
    """Tags weighted by tf-idf, rows L2-normalised; a user's profile is the sum of their
    items' tag vectors weighted by log confidence."""

    item_tags: Csr | None = None

    def fit(self, x: Csr, item_tags: Csr | None = None) -> Content:
        n_items = x.shape[1]
        if item_tags is None or item_tags.nnz == 0:
            self.item_tags = sp.csr_matrix((n_items, 1), dtype=np.float32)
            return self
        t = item_tags.astype(np.float32).tocsr()
        df = np.asarray((t > 0).sum(axis=0)).ravel()
        idf = np.log((1 + n_items) / (1 + df)).astype(np.float32) + 1.0
        t = (t @ sp.diags(idf)).tocsr()
        norms = np.sqrt(np.asarray(t.multiply(t).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        self.item_tags = (sp.diags(1.0 / norms) @ t).astype(np.float32).tocsr()
        return self

    def profile(self, rows: Csr) -> Csr:
        assert self.item_tags is not None
        return (log_confidence(rows) @ self.item_tags).tocsr()

    def score(self, rows: Csr) -> F32:
        assert self.item_tags is not None
        return np.asarray((self.profile(rows) @ self.item_tags.T).todense(), dtype=np.float32)


Component = MostPopular | ItemKNN | Ease | Als | Content


def make_component(name: str, params: dict[str, Any], seed: int = 0) -> Component:
    if name == "most_popular":
        return MostPopular()
    if name == "item_knn":
        return ItemKNN(k=int(params.get("k", 100)), shrink=float(params.get("shrink", 10.0)))
    if name == "ease":
        return Ease(l2=float(params.get("l2", 100.0)), max_items=int(params.get("max_items", 5000)))
    if name == "als":
        return Als(
            factors=int(params.get("factors", 64)),
            regularization=float(params.get("regularization", 1.0)),
            alpha=float(params.get("alpha", 10.0)),
            iterations=int(params.get("iterations", 15)),
            seed=seed,
        )
    if name == "content":
        return Content()
    raise ValueError(f"unknown recommender component {name!r}")


def user_confidence(rows: Csr) -> NDArray[np.float64]:
    """How much we know about a user, 0..1: interactions / 10, capped (10 interactions are
    enough for the collaborative side to be trusted, as the spec's blend assumes)."""
    counts = np.diff(rows.indptr).astype(np.float64)
    out: NDArray[np.float64] = np.minimum(1.0, counts / 10.0)
    return out


def spec_blend_weights(confidence: NDArray[np.float64]) -> NDArray[np.float64]:
    """The spec's policy: content weight 0.6 when user confidence > 0.7, else 0.8; the rest
    collaborative (ALS). Columns follow COMPONENTS."""
    w = np.zeros((len(confidence), len(COMPONENTS)))
    content = np.where(confidence > 0.7, 0.6, 0.8)
    w[:, COMPONENTS.index("content")] = content
    w[:, COMPONENTS.index("als")] = 1.0 - content
    return w


def blend(parts: dict[str, F32], weights: NDArray[np.float64]) -> F32:
    """Σ_c w[u, c] · standardised score_c[u, :]; parts must already be standardised."""
    out = np.zeros_like(next(iter(parts.values())))
    for c, name in enumerate(COMPONENTS):
        if name in parts and np.any(weights[:, c]):
            out += weights[:, c : c + 1].astype(np.float32) * parts[name]
    return out


def is_cold(rows: Csr) -> NDArray[np.bool_]:
    return np.asarray(np.diff(rows.indptr) <= COLD_START_MAX_INTERACTIONS)


@dataclass
class Hybrid:
    """The components, fitted, and the blend: `tuned` holds one weight vector for
    cold-start users and one for the rest; `policy` is `hybrid_spec` or `hybrid_tuned`."""

    components: dict[str, Component]
    tuned_cold: NDArray[np.float64]
    tuned_warm: NDArray[np.float64]
    policy: str = "hybrid_tuned"

    def weights(self, rows: Csr) -> NDArray[np.float64]:
        if self.policy == "hybrid_spec":
            return spec_blend_weights(user_confidence(rows))
        return np.where(is_cold(rows)[:, None], self.tuned_cold[None, :], self.tuned_warm[None, :])

    def parts(self, rows: Csr) -> dict[str, F32]:
        return {name: standardise(model.score(rows)) for name, model in self.components.items()}

    def score(self, rows: Csr) -> F32:
        return blend(self.parts(rows), self.weights(rows))


# -- artifacts: numpy arrays only (no pickle: loading an artifact never runs code) ----------


def save_arrays(arrays: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def load_arrays(blob: bytes) -> dict[str, Any]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def csr_to_arrays(prefix: str, m: Csr) -> dict[str, Any]:
    m = m.tocsr()
    return {
        f"{prefix}_data": m.data, f"{prefix}_indices": m.indices,
        f"{prefix}_indptr": m.indptr, f"{prefix}_shape": np.asarray(m.shape),
    }  # fmt: skip


def csr_from_arrays(prefix: str, a: dict[str, Any]) -> Csr:
    shape = tuple(int(v) for v in a[f"{prefix}_shape"])
    return sp.csr_matrix(
        (a[f"{prefix}_data"], a[f"{prefix}_indices"], a[f"{prefix}_indptr"]), shape=shape
    )


def hybrid_to_arrays(h: Hybrid) -> dict[str, Any]:
    c = h.components
    pop, knn, ease, als, content = (
        c["most_popular"], c["item_knn"], c["ease"], c["als"], c["content"]
    )  # fmt: skip
    assert isinstance(pop, MostPopular)
    assert isinstance(knn, ItemKNN)
    assert isinstance(ease, Ease)
    assert isinstance(als, Als)
    assert isinstance(content, Content)
    assert knn.similarity is not None
    assert content.item_tags is not None
    return {
        "pop_counts": pop.counts, "ease_items": ease.items, "ease_weights": ease.weights,
        "ease_n_items": np.asarray(ease.n_items), "ease_l2": np.asarray(ease.l2),
        "als_item_factors": als.item_factors, "als_user_factors": als.user_factors,
        "als_params": np.asarray([als.regularization, als.alpha]),
        "tuned_cold": h.tuned_cold, "tuned_warm": h.tuned_warm,
        "policy": np.asarray(h.policy),
        **csr_to_arrays("knn", knn.similarity), **csr_to_arrays("tags", content.item_tags),
    }  # fmt: skip


def hybrid_from_arrays(a: dict[str, Any]) -> Hybrid:
    als = Als(
        regularization=float(a["als_params"][0]), alpha=float(a["als_params"][1]),
        item_factors=a["als_item_factors"], user_factors=a["als_user_factors"],
        factors=int(a["als_item_factors"].shape[1]),
    )  # fmt: skip
    components: dict[str, Component] = {
        "most_popular": MostPopular(counts=a["pop_counts"]),
        "item_knn": ItemKNN(similarity=csr_from_arrays("knn", a)),
        "ease": Ease(
            l2=float(a["ease_l2"]),
            items=a["ease_items"],
            weights=a["ease_weights"],
            n_items=int(a["ease_n_items"]),
        ),
        "als": als,
        "content": Content(item_tags=csr_from_arrays("tags", a)),
    }
    return Hybrid(components, a["tuned_cold"], a["tuned_warm"], policy=str(a["policy"]))
