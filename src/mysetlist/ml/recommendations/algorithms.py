"""The artist recommenders, on a users x items confidence matrix (CSR, float32).

Every model scores items from a user's *history row*, so one fitted model serves users it
was trained on, users whose history changed since and users it never saw, through one path
(the offline table, the hybrid and the API all call `score`). Scores are dense
`(len(rows), n_items)` float32 arrays; callers mask what must not be recommended.

- `most_popular`: how many users interacted with the item.
- `item_knn`: cosine item-item similarity with shrinkage, top-k neighbours per item.
- `rp3beta`: the 3-step random walk user → item → user → item, transition probabilities
  raised to `alpha`, divided by the target's popularity^`beta` (Paudel et al. 2016).
- `ease`: EASE^R (Steck 2019), a closed-form item-item model, on the `max_items` most
  popular items (the inverse is dense: n³ work, n² memory).
- `edlae`: EASE with dropout-emphasised regularisation (Steck 2020): item i's penalty grows
  with its own popularity, λ + p/(1-p)·G_ii, as a denoising autoencoder with dropout p has.
- `ease_tags`: EASE on the interactions with the item-tag matrix stacked under them as extra
  rows (each tag a pseudo-user of its items, weighted), so tags shape the item-item weights.
- `als`: `implicit`'s alternating least squares (Hu, Koren, Volinsky), confidence
  C = 1 + alpha·log1p(x) on observed cells and 1 elsewhere; user vectors come from implicit's
  own exact user step (`recalculate_user`), for training users and new rows alike.
- `ials`: iALS as tuned in Rendle et al. 2022: binary targets, unobserved weight a0,
  frequency-scaled regularisation λ·(|I_u| + a0·|I|)^nu, more iterations, small init.
- `content`: the user's tag profile (their items' tags, tf-idf weighted) against each item's.
- `hybrid`: a weighted sum of the components' per-user standardised scores (late fusion),
  one weight vector for cold-start users and one for the rest, both fitted on validation
  users.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Self, TypeAlias

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

F32 = NDArray[np.float32]
Csr: TypeAlias = sp.csr_matrix  # scipy ships no types: an alias of Any to mypy
COMPONENTS = (
    "most_popular", "item_knn", "rp3beta", "ease", "edlae", "ease_tags", "als", "ials",
    "content",
)  # fmt: skip
COLD_START_MAX_INTERACTIONS = 5  # the cold-start slice: ≤ 5 interactions
# Always in a served artifact, whatever their blend weight: ALS for similar fans, item-kNN
# and content for the "because" reasons.
SERVED_ALWAYS = ("als", "item_knn", "content")


def binary(x: Csr) -> Csr:
    b = x.copy().astype(np.float32)
    b.data[:] = 1.0
    return b


def log_confidence(x: Csr) -> Csr:
    """Play counts are heavy-tailed: log1p keeps a 500-play artist from drowning the rest."""
    c = x.copy().astype(np.float32)
    np.log1p(c.data, out=c.data)
    return c


def als_confidence(x: Csr, alpha: float) -> Csr:
    """Hu et al.'s confidence on observed cells, C = 1 + alpha·log1p(x) ≥ 1 (unobserved cells
    have C = 1 in implicit), so an observed item never weighs less than an unobserved one."""
    c = log_confidence(x)
    c.data *= np.float32(alpha)
    c.data += np.float32(1.0)
    return c


def standardise(scores: F32) -> F32:
    """Per-row z-scores, so components on different scales can be blended."""
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    out: F32 = ((scores - mean) / (std + 1e-6)).astype(np.float32)
    return out


def _prefixed(prefix: str, arrays: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}__{k}": v for k, v in arrays.items()}


def _unprefixed(prefix: str, a: dict[str, Any]) -> dict[str, Any]:
    start = f"{prefix}__"
    return {k[len(start) :]: v for k, v in a.items() if k.startswith(start)}


@dataclass
class MostPopular:
    counts: F32 = field(default_factory=lambda: np.zeros(0, np.float32))

    def fit(self, x: Csr, item_tags: Csr | None = None) -> MostPopular:
        self.counts = np.asarray(binary(x).sum(axis=0)).ravel().astype(np.float32)
        return self

    def score(self, rows: Csr) -> F32:
        return np.broadcast_to(self.counts, (rows.shape[0], len(self.counts))).copy()

    def to_arrays(self) -> dict[str, Any]:
        return {"counts": self.counts}

    @classmethod
    def from_arrays(cls, a: dict[str, Any]) -> MostPopular:
        return cls(counts=a["counts"])


@dataclass
class _ItemToItem:
    """A model that scores a user's items by an items x items matrix over their history."""

    similarity: Csr | None = None

    def score(self, rows: Csr) -> F32:
        assert self.similarity is not None
        return np.asarray((binary(rows) @ self.similarity).todense(), dtype=np.float32)

    def to_arrays(self) -> dict[str, Any]:
        assert self.similarity is not None
        return csr_to_arrays("sim", self.similarity)

    @classmethod
    def from_arrays(cls, a: dict[str, Any]) -> Self:
        return cls(similarity=csr_from_arrays("sim", a))


@dataclass
class ItemKNN(_ItemToItem):
    """`similarity`: items x items, column j = neighbours of j."""

    k: int = 100
    shrink: float = 10.0

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


def _top_k_per_column(m: sp.csc_matrix, k: int) -> Csr:
    """Keep the k largest entries of every column."""
    m = m.tocsc()
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


def _row_normalise(m: Csr) -> Csr:
    sums = np.asarray(m.sum(axis=1)).ravel()
    sums[sums == 0] = 1.0
    out: Csr = (sp.diags(1.0 / sums) @ m).tocsr()
    return out


@dataclass
class RP3Beta(_ItemToItem):
    """W[i, j] = Σ_u P(i→u)^alpha · P(u→j)^alpha / pop(j)^β, the k largest per source item i
    (`similarity`: items x items, row i = where a walk from i lands)."""

    alpha: float = 1.0
    beta: float = 0.5
    k: int = 200

    def fit(self, x: Csr, item_tags: Csr | None = None) -> RP3Beta:
        b = binary(x)
        item_to_user = _row_normalise(b.T.tocsr())
        user_to_item = _row_normalise(b)
        item_to_user.data **= self.alpha
        user_to_item.data **= self.alpha
        w = (item_to_user @ user_to_item).tocsr().astype(np.float32)
        popularity = np.asarray(b.sum(axis=0)).ravel().astype(np.float64)
        penalty = np.power(np.maximum(popularity, 1.0), -self.beta).astype(np.float32)
        w = (w @ sp.diags(penalty)).tocsr()
        w.setdiag(0)
        w.eliminate_zeros()
        # top k per row i: per column of the transpose, then back
        self.similarity = _top_k_per_column(w.T.tocsc(), self.k).T.tocsr()
        return self


@dataclass
class Ease:
    """EASE^R; `dropout` > 0 makes it EDLAE (penalty λ + p/(1-p)·G_ii on item i), and
    `tag_weight` > 0 stacks the item-tag matrix (transposed, times the weight) under the
    interactions as extra rows."""

    l2: float = 100.0
    dropout: float = 0.0
    tag_weight: float = 0.0
    max_items: int = 5000
    items: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    weights: F32 = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    n_items: int = 0

    def fit(self, x: Csr, item_tags: Csr | None = None) -> Ease:
        b = binary(x)
        if self.tag_weight > 0 and item_tags is not None and item_tags.nnz:
            tags = binary(item_tags.T.tocsr())
            tags.data *= np.float32(self.tag_weight)
            b = sp.vstack([b, tags]).tocsr()
        self.n_items = b.shape[1]
        counts = np.asarray((b > 0).sum(axis=0)).ravel()
        order = np.argsort(-counts, kind="stable")
        self.items = np.sort(order[: min(self.max_items, int((counts > 0).sum()))])
        if len(self.items) == 0:
            self.weights = np.zeros((0, 0), np.float32)
            return self
        sub = b[:, self.items]
        gram = np.asarray((sub.T @ sub).todense(), dtype=np.float64)
        diagonal = np.diag(gram).copy()
        gram[np.diag_indices_from(gram)] += self.l2
        if self.dropout > 0:
            gram[np.diag_indices_from(gram)] += self.dropout / (1.0 - self.dropout) * diagonal
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

    def to_arrays(self) -> dict[str, Any]:
        return {"items": self.items, "weights": self.weights, "n_items": np.asarray(self.n_items)}

    @classmethod
    def from_arrays(cls, a: dict[str, Any]) -> Ease:
        return cls(items=a["items"], weights=a["weights"], n_items=int(a["n_items"]))


@dataclass
class Als:
    factors: int = 64
    regularization: float = 1.0
    alpha: float = 10.0
    iterations: int = 15
    seed: int = 0
    item_factors: F32 = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    # The training users' vectors, from `user_vectors` like every other row (similar fans).
    user_factors: F32 = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def _implicit(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        # alpha=1: the confidence is already in the matrix (`als_confidence`).
        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=1.0,
            iterations=self.iterations,
            random_state=self.seed,
            calculate_training_loss=False,
            num_threads=1,
        )

    def fit(self, x: Csr, item_tags: Csr | None = None) -> Als:
        from threadpoolctl import threadpool_limits

        # implicit parallelises itself; a multi-threaded BLAS underneath only oversubscribes.
        with threadpool_limits(1, "blas"):
            model = self._implicit()
            model.fit(als_confidence(x, self.alpha), show_progress=False)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        # implicit's last user step was conjugate-gradient; recompute the training users'
        # vectors with the exact step every other row gets.
        self.user_factors = self.user_vectors(x)
        return self

    def user_vectors(self, rows: Csr) -> F32:
        """implicit's own user step (`recalculate_user`, a Cholesky solve of
        (YᵀY + Yᵀ(C_u - I)Y + λI) x_u = YᵀC_u p_u) for each history row: what the offline
        table, the hybrid and the API score with."""
        from threadpoolctl import threadpool_limits

        conf = als_confidence(rows.tocsr(), self.alpha)
        with threadpool_limits(1, "blas"):
            model = self._implicit()
            model.item_factors = self.item_factors
            out = model.recalculate_user(np.arange(rows.shape[0]), conf)
        vectors: F32 = np.asarray(out, dtype=np.float32).reshape(rows.shape[0], -1)
        return vectors

    fold_in = user_vectors  # the name similar-fans calls

    def score(self, rows: Csr) -> F32:
        return np.asarray(self.user_vectors(rows) @ self.item_factors.T, dtype=np.float32)

    def to_arrays(self) -> dict[str, Any]:
        return {
            "item_factors": self.item_factors, "user_factors": self.user_factors,
            "params": np.asarray([self.regularization, self.alpha]),
        }  # fmt: skip

    @classmethod
    def from_arrays(cls, a: dict[str, Any]) -> Als:
        return cls(
            regularization=float(a["params"][0]), alpha=float(a["params"][1]),
            item_factors=a["item_factors"], user_factors=a["user_factors"],
            factors=int(a["item_factors"].shape[1]),
        )  # fmt: skip


@dataclass
class IAls:
    """iALS (Rendle, Krichene, Zhang, Koren 2022): minimise Σ_observed (1 - ⟨w_u, h_i⟩)² +
    a0 Σ_all ⟨w_u, h_i⟩² + λ Σ_u (|I_u| + a0|I|)^nu ‖w_u‖² + λ Σ_i (|U_i| + a0|U|)^nu ‖h_i‖²,
    by exact alternating solves; `user_vectors` is the same user step, for any row."""

    factors: int = 128
    regularization: float = 0.01
    unobserved: float = 0.1
    nu: float = 1.0
    iterations: int = 16
    seed: int = 0
    item_factors: F32 = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def _solve(self, rows: Csr, fixed: F32) -> F32:
        """One side's exact least-squares step given the other side's factors F:
        (B + Y_u^T Y_u) x_u = Y_u^T 1 with B = a0 FtF + lambda_u I and Y_u the rows of F the
        user interacted with. lambda_u depends only on the count n, so rows of equal n share
        B and are solved together; when n < d through Woodbury's identity (an n x n system
        per row instead of d x d: most users have few interactions)."""
        from threadpoolctl import threadpool_limits

        # many small products: a threaded BLAS only adds overhead (ten times, measured)
        with threadpool_limits(1, "blas"):
            return self._solve_rows(rows, fixed)

    def _solve_rows(self, rows: Csr, fixed: F32) -> F32:
        rows = rows.tocsr()
        rows.sort_indices()
        f = fixed.astype(np.float64)
        d = f.shape[1]
        gram = self.unobserved * (f.T @ f)
        counts = np.diff(rows.indptr)
        out = np.zeros((rows.shape[0], d), dtype=np.float32)
        for n in (int(c) for c in np.unique(counts) if c > 0):  # no interactions: zero
            group = np.flatnonzero(counts == n)
            reg = self.regularization * (n + self.unobserved * f.shape[0]) ** self.nu
            base = gram + reg * np.eye(d)
            base_inv = np.linalg.inv(base) if n < d else None
            step = max(1, 2_000_000 // (d * max(n, d)))  # bounded (rows, n, d) / (rows, d, d)
            for start in range(0, len(group), step):
                chunk = group[start : start + step]
                idx = rows.indices[rows.indptr[chunk][:, None] + np.arange(n)[None, :]]
                y = f[idx]  # (rows, n, d)
                if base_inv is None:
                    a = base + np.matmul(y.transpose(0, 2, 1), y)
                    out[chunk] = np.linalg.solve(a, y.sum(axis=1)[..., None])[..., 0]
                    continue
                z = (y.reshape(-1, d) @ base_inv).reshape(len(chunk), n, d)  # Y B^-1
                bb = z.sum(axis=1)  # B^-1 Y^T 1
                k = np.matmul(z, y.transpose(0, 2, 1))
                k[:, np.arange(n), np.arange(n)] += 1.0  # I + Y B^-1 Y^T
                t = np.linalg.solve(k, np.matmul(y, bb[..., None]))
                out[chunk] = bb - np.matmul(z.transpose(0, 2, 1), t)[..., 0]
        return out

    def fit(self, x: Csr, item_tags: Csr | None = None) -> IAls:
        b = binary(x)
        bt = b.T.tocsr()
        rng = np.random.default_rng(self.seed)
        scale = 0.1 / np.sqrt(self.factors)
        items = rng.normal(0.0, scale, (b.shape[1], self.factors)).astype(np.float32)
        for _ in range(self.iterations):
            users = self._solve(b, items)
            items = self._solve(bt, users)
        self.item_factors = items
        return self

    def user_vectors(self, rows: Csr) -> F32:
        return self._solve(rows, self.item_factors)

    def score(self, rows: Csr) -> F32:
        return np.asarray(self.user_vectors(rows) @ self.item_factors.T, dtype=np.float32)

    def to_arrays(self) -> dict[str, Any]:
        return {
            "item_factors": self.item_factors,
            "params": np.asarray([self.regularization, self.unobserved, self.nu]),
        }

    @classmethod
    def from_arrays(cls, a: dict[str, Any]) -> IAls:
        reg, unobserved, nu = (float(v) for v in a["params"])
        return cls(
            factors=int(a["item_factors"].shape[1]), regularization=reg, unobserved=unobserved,
            nu=nu, item_factors=a["item_factors"],
        )  # fmt: skip


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

    def to_arrays(self) -> dict[str, Any]:
        assert self.item_tags is not None
        return csr_to_arrays("tags", self.item_tags)

    @classmethod
    def from_arrays(cls, a: dict[str, Any]) -> Content:
        return cls(item_tags=csr_from_arrays("tags", a))


Component = MostPopular | ItemKNN | RP3Beta | Ease | Als | IAls | Content
_CLASSES: dict[str, type[Component]] = {
    "most_popular": MostPopular, "item_knn": ItemKNN, "rp3beta": RP3Beta, "ease": Ease,
    "edlae": Ease, "ease_tags": Ease, "als": Als, "ials": IAls, "content": Content,
}  # fmt: skip


def make_component(name: str, params: dict[str, Any], seed: int = 0) -> Component:
    p = {k: float(v) for k, v in params.items()}
    if name == "most_popular":
        return MostPopular()
    if name == "item_knn":
        return ItemKNN(k=int(p.get("k", 100)), shrink=p.get("shrink", 10.0))
    if name == "rp3beta":
        return RP3Beta(alpha=p.get("alpha", 1.0), beta=p.get("beta", 0.5), k=int(p.get("k", 200)))
    if name in ("ease", "edlae", "ease_tags"):
        return Ease(
            l2=p.get("l2", 100.0),
            dropout=p.get("dropout", 0.0) if name == "edlae" else 0.0,
            tag_weight=p.get("tag_weight", 1.0) if name == "ease_tags" else 0.0,
            max_items=int(p.get("max_items", 5000)),
        )
    if name == "als":
        return Als(
            factors=int(p.get("factors", 64)),
            regularization=p.get("regularization", 1.0),
            alpha=p.get("alpha", 10.0),
            iterations=int(p.get("iterations", 15)),
            seed=seed,
        )
    if name == "ials":
        return IAls(
            factors=int(p.get("factors", 128)),
            regularization=p.get("regularization", 0.01),
            unobserved=p.get("unobserved", 0.1),
            nu=p.get("nu", 1.0),
            iterations=int(p.get("iterations", 16)),
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


def used_components(*weights: NDArray[np.float64]) -> list[str]:
    """Components with a non-zero weight in any of the blends."""
    return [n for c, n in enumerate(COMPONENTS) if any(float(w[c]) != 0.0 for w in weights)]


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

    def parts(self, rows: Csr, weights: NDArray[np.float64] | None = None) -> dict[str, F32]:
        """The standardised scores of the components the weights use (all when None)."""
        used = None if weights is None else set(used_components(*weights))
        return {
            name: standardise(model.score(rows))
            for name, model in self.components.items()
            if used is None or name in used
        }

    def score(self, rows: Csr) -> F32:
        weights = self.weights(rows)
        return blend(self.parts(rows, weights), weights)


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
    out: dict[str, Any] = {
        "components": np.asarray(list(h.components), dtype=str),
        "weight_columns": np.asarray(COMPONENTS, dtype=str),
        "tuned_cold": h.tuned_cold, "tuned_warm": h.tuned_warm, "policy": np.asarray(h.policy),
    }  # fmt: skip
    for name, model in h.components.items():
        out.update(_prefixed(name, model.to_arrays()))
    return out


def _weights_by_name(columns: list[str], w: NDArray[np.float64]) -> NDArray[np.float64]:
    """A weight vector stored against `columns`, laid out on today's COMPONENTS."""
    out = np.zeros(len(COMPONENTS))
    for name, value in zip(columns, w, strict=True):
        if name in COMPONENTS:
            out[COMPONENTS.index(name)] = float(value)
    return out


_LEGACY_COLUMNS = ["most_popular", "item_knn", "ease", "als", "content"]


def hybrid_from_arrays(a: dict[str, Any]) -> Hybrid:
    if "components" not in a:  # an artifact from before per-component prefixes
        return _legacy_hybrid_from_arrays(a)
    columns = [str(c) for c in a["weight_columns"]]
    components: dict[str, Component] = {
        name: _CLASSES[name].from_arrays(_unprefixed(name, a))
        for name in (str(n) for n in a["components"])
    }
    return Hybrid(
        components,
        _weights_by_name(columns, a["tuned_cold"]),
        _weights_by_name(columns, a["tuned_warm"]),
        policy=str(a["policy"]),
    )


def _legacy_hybrid_from_arrays(a: dict[str, Any]) -> Hybrid:
    als = Als(
        regularization=float(a["als_params"][0]), alpha=float(a["als_params"][1]),
        item_factors=a["als_item_factors"], user_factors=a["als_user_factors"],
        factors=int(a["als_item_factors"].shape[1]),
    )  # fmt: skip
    components: dict[str, Component] = {
        "most_popular": MostPopular(counts=a["pop_counts"]),
        "item_knn": ItemKNN(similarity=csr_from_arrays("knn", a)),
        "ease": Ease(items=a["ease_items"], weights=a["ease_weights"],
                     n_items=int(a["ease_n_items"])),
        "als": als,
        "content": Content(item_tags=csr_from_arrays("tags", a)),
    }  # fmt: skip
    return Hybrid(
        components,
        _weights_by_name(_LEGACY_COLUMNS, a["tuned_cold"]),
        _weights_by_name(_LEGACY_COLUMNS, a["tuned_warm"]),
        policy=str(a["policy"]),
    )
