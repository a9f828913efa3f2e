"""Offline evaluation of the artist recommenders, tuned on validation, reported on test.

Protocol (issue 8): per user a random 80/10/10 split with floor rounding (test and
validation get ⌊n/10⌋ items each); ranking over all items with the user's known items
masked; binary relevance; Precision, Recall, NDCG (IDCG over min(|test|, 10)) and HitRate at
10, for every evaluated user and for the cold-start slice (≤ 5 training interactions).

Honesty: `tune` receives only the training and validation splits: every hyper-parameter
and blend weight is chosen there (a 1-D grid whose best value sits on its edge is widened
until it does not). Then each chosen model is refitted on train + validation and scored on
the test split, once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from mysetlist.ml.recommendations.algorithms import (
    COLD_START_MAX_INTERACTIONS,
    COMPONENTS,
    F32,
    Als,
    Component,
    Csr,
    Hybrid,
    blend,
    is_cold,
    make_component,
    spec_blend_weights,
    standardise,
)
from mysetlist.ml.recommendations.datasets import Interactions

K = 10
METRICS = ("precision@10", "recall@10", "ndcg@10", "hit@10")
MODELS = ("most_popular", "item_knn", "ease", "als", "content", "hybrid_spec", "hybrid_tuned")
BATCH = 512
MAX_TUNING_USERS = 3000  # validation users sampled for tuning (time bound on big datasets)
Progress = Callable[[str, int, int], None]  # (what, steps done, steps planned)

# Starting points and grids; numeric grids are geometric so an edge can be widened.
START: dict[str, dict[str, float]] = {
    "item_knn": {"k": 100, "shrink": 10},
    "ease": {"l2": 200},
    "als": {"factors": 64, "regularization": 1.0, "alpha": 10.0},
}
GRIDS: dict[str, dict[str, list[float]]] = {
    "item_knn": {"k": [25, 50, 100, 200, 400], "shrink": [1, 10, 100, 1000]},
    "ease": {"l2": [10, 50, 200, 800, 3200]},
    "als": {
        "factors": [32, 64, 128, 256],
        "regularization": [0.1, 1, 10, 100],
        "alpha": [1, 3, 10, 30],
    },
}
MAX_FACTORS = 256
ROUNDS = {"item_knn": 1, "ease": 1, "als": 2}


@dataclass(frozen=True)
class Split:
    train: Csr
    valid: Csr
    test: Csr


def split(x: Csr, seed: int) -> Split:
    """Per user, a random 80/10/10 split with floor rounding: ⌊n/10⌋ test, ⌊n/10⌋ validation."""
    x = x.tocsr()
    x.sort_indices()
    rng = np.random.default_rng(seed)
    row = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    order = np.lexsort((rng.random(x.nnz), row))  # rows stay in order, items shuffled inside
    position = np.empty(x.nnz, dtype=np.int64)
    position[order] = np.arange(x.nnz) - x.indptr[row[order]]
    tenth = np.diff(x.indptr)[row] // 10
    part = np.where(position < tenth, 2, np.where(position < 2 * tenth, 1, 0))

    def pick(p: int) -> Csr:
        keep = part == p
        m = sp.csr_matrix(
            (x.data[keep], (row[keep], x.indices[keep])), shape=x.shape, dtype=np.float32
        )
        return m

    return Split(pick(0), pick(1), pick(2))


def users_with_items(target: Csr) -> NDArray[np.int64]:
    return np.flatnonzero(np.diff(target.indptr) > 0)


def ranking_metrics(scores: F32, known: Csr, target: Csr) -> NDArray[np.float64]:
    """Per row: precision, recall, NDCG, hit at 10; `known` items are masked out."""
    s = scores.copy()
    kr, kc = known.nonzero()
    s[kr, kc] = -np.inf
    k = min(K, s.shape[1])
    top = np.argpartition(-s, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, axis=1), axis=1), axis=1)
    relevant = np.asarray(target[np.arange(s.shape[0])[:, None], top].todense()) > 0
    n_rel = np.diff(target.indptr).astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (relevant * discounts).sum(axis=1)
    idcg = np.cumsum(discounts)[np.minimum(n_rel, k).astype(np.int64) - 1]
    hits = relevant.sum(axis=1)
    out = np.empty((s.shape[0], 4))
    out[:, 0] = hits / K
    out[:, 1] = hits / n_rel
    out[:, 2] = dcg / idcg
    out[:, 3] = hits > 0
    return out


def _batches(users: NDArray[np.int64]) -> Iterator[NDArray[np.int64]]:
    for start in range(0, len(users), BATCH):
        yield users[start : start + BATCH]


def score_rows(model: Component | Hybrid, history: Csr, users: NDArray[np.int64]) -> F32:
    if isinstance(model, Als):
        return model.score_users(history[users], users)
    return model.score(history[users])


def evaluate_model(
    model: Component | Hybrid, history: Csr, target: Csr, users: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Per-user metrics (rows follow `users`) of `model` ranking `target` given `history`."""
    parts = [
        ranking_metrics(score_rows(model, history, b), history[b], target[b])
        for b in _batches(users)
    ]
    return np.vstack(parts) if parts else np.zeros((0, 4))


def summary(per_user: NDArray[np.float64]) -> dict[str, float | None]:
    """Mean of each metric; None for an empty slice (with ⌊n/10⌋ test items, a user with
    ≤ 5 training interactions has no test item, so the cold-start slice is often empty)."""
    if len(per_user) == 0:
        return dict.fromkeys(METRICS, None)
    means = per_user.mean(axis=0)
    return {name: round(float(v), 5) for name, v in zip(METRICS, means, strict=True)}


# -- tuning ---------------------------------------------------------------------------------


@dataclass
class Tuned:
    params: dict[str, dict[str, float]] = field(default_factory=dict)
    validation_ndcg: dict[str, float] = field(default_factory=dict)
    tuned_cold: NDArray[np.float64] = field(default_factory=lambda: np.zeros(len(COMPONENTS)))
    tuned_warm: NDArray[np.float64] = field(default_factory=lambda: np.zeros(len(COMPONENTS)))
    serve: str = "hybrid_tuned"  # the blend that did better on validation


class _Steps:
    def __init__(self, progress: Progress | None, planned: int) -> None:
        self.progress, self.done, self.planned = progress, 0, planned

    def step(self, what: str, extra_planned: int = 0) -> None:
        self.planned += extra_planned
        self.done += 1
        if self.progress is not None:
            self.progress(what, self.done, max(self.planned, self.done))


def _widen(grid: list[float], best: float, name: str) -> list[float]:
    """A grid whose optimum sits on an edge gets one more geometric step beyond it."""
    ordered = sorted(grid)
    if len(ordered) < 2:
        return grid
    if best == ordered[-1]:
        nxt = ordered[-1] * ordered[-1] / ordered[-2]
        if name == "factors" and nxt > MAX_FACTORS:
            return grid
        return [*ordered, round(nxt, 6)]
    if best == ordered[0] and name not in ("factors", "k"):
        return [round(ordered[0] * ordered[0] / ordered[1], 6), *ordered]
    if best == ordered[0] and ordered[0] * ordered[0] / ordered[1] >= 2:
        return [int(ordered[0] * ordered[0] / ordered[1]), *ordered]
    return grid


def _coordinate_search(
    name: str,
    score: Callable[[dict[str, float]], float],
    steps: _Steps,
) -> tuple[dict[str, float], float]:
    """Each parameter in turn over its grid (others fixed), `ROUNDS[name]` times; a best
    value on a grid's edge widens that grid (at most 3 times per parameter and round)."""
    current = dict(START[name])
    seen: dict[tuple[tuple[str, float], ...], float] = {}

    def value(params: dict[str, float]) -> float:
        key = tuple(sorted(params.items()))
        if key not in seen:
            seen[key] = score(params)
            steps.step(f"tuning {name} {_describe(params)}")
        return seen[key]

    best_value = value(current)
    for _ in range(ROUNDS[name]):
        for param, grid0 in GRIDS[name].items():
            grid = list(grid0)
            for _widening in range(4):
                steps.planned += sum(1 for v in grid if {**current, param: v} != current)
                for v in grid:
                    candidate = {**current, param: v}
                    got = value(candidate)
                    if got > best_value:
                        best_value, current = got, candidate
                wider = _widen(grid, current[param], param)
                if wider == grid:
                    break
                grid = wider
    return current, best_value


def _describe(params: dict[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in params.items())


def _validation_users(s: Split, seed: int) -> NDArray[np.int64]:
    users = users_with_items(s.valid)
    if len(users) > MAX_TUNING_USERS:
        users = np.sort(np.random.default_rng(seed + 1).choice(users, MAX_TUNING_USERS, False))
    return users


def _candidate_weights(rng: np.random.Generator, n: int) -> list[NDArray[np.float64]]:
    eye = np.eye(len(COMPONENTS))
    out = [eye[i] for i in range(len(COMPONENTS))]
    out += [(eye[i] + eye[j]) / 2 for i in range(len(COMPONENTS)) for j in range(i)]
    out += [rng.dirichlet(np.full(len(COMPONENTS), 0.7)) for _ in range(n)]
    return out


def _refine(
    best: NDArray[np.float64], rng: np.random.Generator, n: int
) -> list[NDArray[np.float64]]:
    out = []
    for _ in range(n):
        w = best * np.exp(rng.normal(0, 0.5, len(best)))
        w[rng.random(len(w)) < 0.15] = 0.0  # try dropping a component now and then
        if rng.random() < 0.3:
            w[rng.integers(len(w))] += 0.1
        out.append(w / w.sum() if w.sum() > 0 else best)
    return out


def _blend_scores(
    components: dict[str, Component],
    history: Csr,
    target: Csr,
    users: NDArray[np.int64],
    candidates: list[NDArray[np.float64]],
) -> NDArray[np.float64]:
    """NDCG per (candidate weight vector, user): components scored once per batch."""
    out = np.zeros((len(candidates), len(users)))
    offset = 0
    for b in _batches(users):
        parts = {n: standardise(score_rows(m, history, b)) for n, m in components.items()}
        known, tgt = history[b], target[b]
        for c, w in enumerate(candidates):
            scores = blend(parts, np.broadcast_to(w, (len(b), len(w))))
            out[c, offset : offset + len(b)] = ranking_metrics(scores, known, tgt)[:, 2]
        offset += len(b)
    return out


def tune(
    train: Csr,
    valid: Csr,
    item_tags: Csr | None,
    *,
    seed: int,
    progress: Progress | None = None,
) -> Tuned:
    """Choose every model's hyper-parameters and the hybrid's weights on `valid` (the test
    split is not an argument: it cannot influence a choice)."""
    s = Split(train, valid, sp.csr_matrix(train.shape, dtype=np.float32))
    users = _validation_users(s, seed)
    steps = _Steps(progress, planned=8)
    tuned = Tuned()

    def ndcg_of(name: str, params: dict[str, float]) -> float:
        model = make_component(name, params, seed).fit(train, item_tags)
        return float(evaluate_model(model, train, valid, users)[:, 2].mean()) if len(users) else 0.0

    for name in ("item_knn", "ease", "als"):
        params, got = _coordinate_search(name, functools.partial(ndcg_of, name), steps)
        tuned.params[name], tuned.validation_ndcg[name] = params, got
    for name in ("most_popular", "content"):
        tuned.params[name] = {}
        tuned.validation_ndcg[name] = ndcg_of(name, {})
        steps.step(f"scoring {name}")

    components = {
        n: make_component(n, tuned.params[n], seed).fit(train, item_tags) for n in COMPONENTS
    }
    steps.step("fitting the hybrid's components")
    cold = is_cold(train[users])
    rng = np.random.default_rng(seed + 2)
    candidates = _candidate_weights(rng, 30)
    # Nothing to tune on (no user has a validation item): the spec's warm-user blend.
    tuned.tuned_cold = tuned.tuned_warm = spec_blend_weights(np.ones(1))[0]
    for round_no in range(2 if len(users) else 0):
        ndcg = _blend_scores(components, train, valid, users, candidates)
        for segment, pick in (("cold", cold), ("warm", ~cold)):
            means = ndcg[:, pick].mean(axis=1) if pick.any() else ndcg.mean(axis=1)
            best = candidates[int(np.argmax(means))]
            if segment == "cold":
                tuned.tuned_cold = best
            else:
                tuned.tuned_warm = best
        steps.step(f"tuning the hybrid's weights, round {round_no + 1}")
        candidates = [
            tuned.tuned_cold, tuned.tuned_warm,
            *_refine(tuned.tuned_cold, rng, 20), *_refine(tuned.tuned_warm, rng, 20),
        ]  # fmt: skip
    hybrid = Hybrid(components, tuned.tuned_cold, tuned.tuned_warm)
    for policy in ("hybrid_tuned", "hybrid_spec"):
        hybrid.policy = policy
        per_user = evaluate_model(hybrid, train, valid, users)[:, 2]
        tuned.validation_ndcg[policy] = float(per_user.mean()) if len(per_user) else 0.0
    steps.step("scoring the blends")
    tuned.serve = (
        "hybrid_tuned"
        if tuned.validation_ndcg["hybrid_tuned"] >= tuned.validation_ndcg["hybrid_spec"]
        else "hybrid_spec"
    )
    return tuned


def fit_hybrid(x: Csr, item_tags: Csr | None, tuned: Tuned, seed: int) -> Hybrid:
    components = {n: make_component(n, tuned.params[n], seed).fit(x, item_tags) for n in COMPONENTS}
    return Hybrid(components, tuned.tuned_cold, tuned.tuned_warm, policy=tuned.serve)


def evaluate(
    data: Interactions, *, seed: int = 0, progress: Progress | None = None
) -> dict[str, Any]:
    """Tune on validation, then report every model on test, overall and for cold start."""
    return evaluate_and_tune(data, seed=seed, progress=progress)[0]


def evaluate_and_tune(
    data: Interactions, *, seed: int = 0, progress: Progress | None = None
) -> tuple[dict[str, Any], Tuned]:
    """`evaluate`, also returning the choices made on validation (training reuses them)."""
    return evaluate_split(data, split(data.matrix, seed), seed=seed, progress=progress)


def evaluate_split(
    data: Interactions, s: Split, *, seed: int = 0, progress: Progress | None = None
) -> tuple[dict[str, Any], Tuned]:
    """Tune on `s.valid`, refit on train + validation, report on `s.test`."""
    tuned = tune(s.train, s.valid, data.item_tags, seed=seed, progress=progress)
    history = (s.train + s.valid).tocsr()
    hybrid = fit_hybrid(history, data.item_tags, tuned, seed)
    users = users_with_items(s.test)
    cold = np.diff(s.train.indptr)[users] <= COLD_START_MAX_INTERACTIONS
    models: dict[str, dict[str, float | None]] = {}
    cold_start: dict[str, dict[str, float | None]] = {}
    for name in MODELS:
        if name in hybrid.components:
            model: Component | Hybrid = hybrid.components[name]
        else:
            model = Hybrid(hybrid.components, tuned.tuned_cold, tuned.tuned_warm, policy=name)
        per_user = evaluate_model(model, history, s.test, users)
        models[name], cold_start[name] = summary(per_user), summary(per_user[cold])
        if progress is not None:
            progress(f"testing {name}", 1, 1)
    return {
        "models": models,
        "cold_start": cold_start,
        "users_evaluated": len(users),
        "cold_start_users": int(cold.sum()),
        "dataset": {
            "users": data.matrix.shape[0], "items": data.matrix.shape[1],
            "interactions": data.n_interactions,
            "tags": 0 if data.item_tags is None else data.item_tags.shape[1],
        },
        "tuning": {
            "params": tuned.params, "validation_ndcg@10": {
                k: round(v, 5) for k, v in tuned.validation_ndcg.items()},
            "hybrid_weights": {
                "components": list(COMPONENTS),
                "cold_start": [round(float(v), 4) for v in tuned.tuned_cold],
                "others": [round(float(v), 4) for v in tuned.tuned_warm],
            },
            "serve": tuned.serve,
        },
    }, tuned  # fmt: skip
