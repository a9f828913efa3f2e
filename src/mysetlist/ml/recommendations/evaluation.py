"""Offline evaluation of the artist recommenders, tuned on validation, reported on test.

Protocol. First whole users are held out: of the users with ≥ 6 interactions, 10 % become
cold-start validation users and another 10 % cold-start test users; no model ever trains on
their interactions. For them, k = 1, 3, 5 of their interactions (a random order, so the
three histories are nested) are given as the history and the models rank the rest. Every
other user gets a random 80/10/10 split of their interactions with floor rounding (test
and validation get ⌊n/10⌋ items each). Ranking is over all items with the user's known
items masked; binary relevance; Precision, Recall, NDCG (IDCG over min(|test|, 10)) and
HitRate at 10.

Honesty: `tune` receives only the training split, the validation split and the cold-start
validation users: every hyper-parameter (on the warm validation items; a 1-D grid whose
best value sits on its edge is widened until it does not) and both blends (warm weights on
the warm validation users, cold weights on the cold validation users) are chosen there.
Then each chosen model is refitted on train + validation (+ the cold validation users) and
scored on the test split and the cold test users, once. `intervals` gives paired bootstrap
95 % intervals over test users for `hybrid_tuned` minus the single model that was best on
validation.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from mysetlist.ml.recommendations.algorithms import (
    COMPONENTS,
    F32,
    SERVED_ALWAYS,
    Component,
    Csr,
    Hybrid,
    blend,
    make_component,
    spec_blend_weights,
    standardise,
    used_components,
)
from mysetlist.ml.recommendations.datasets import Interactions

K = 10
METRICS = ("precision@10", "recall@10", "ndcg@10", "hit@10")
SINGLE_MODELS = COMPONENTS
MODELS = (*COMPONENTS, "hybrid_spec", "hybrid_tuned")
BATCH = 512
MAX_TUNING_USERS = 3000  # validation users sampled for tuning (time bound on big datasets)
COLD_KS = (1, 3, 5)  # interactions a held-out user reveals
COLD_MIN_INTERACTIONS = max(COLD_KS) + 1  # at least one item left to rank at k = 5
COLD_SHARE = 0.1  # of the eligible users, held out whole for validation; as many for test
BOOTSTRAP_RESAMPLES = 2000
Progress = Callable[[str, int, int], None]  # (what, steps done, steps planned)


class NothingToEvaluate(ValueError):
    """No user has enough interactions to be scored (the message is one sentence)."""


# Starting points and grids; numeric grids are geometric so an edge can be widened, except
# the bounded ones in FIXED_GRIDS (exponents and a dropout probability).
START: dict[str, dict[str, float]] = {
    "item_knn": {"k": 100, "shrink": 10},
    "rp3beta": {"k": 200, "alpha": 1.0, "beta": 0.4},
    "ease": {"l2": 200},
    "edlae": {"l2": 50, "dropout": 0.25},
    "ease_tags": {"l2": 200, "tag_weight": 1.0},
    "als": {"factors": 64, "regularization": 1.0, "alpha": 10.0},
    # Rendle et al. 2022: nu = 1, small a0 and λ, 16 iterations; factors tuned last.
    "ials": {"factors": 64, "regularization": 0.01, "unobserved": 0.1},
}
GRIDS: dict[str, dict[str, list[float]]] = {
    "item_knn": {"k": [25, 50, 100, 200, 400], "shrink": [1, 10, 100, 1000]},
    "rp3beta": {
        "beta": [0.0, 0.2, 0.4, 0.6, 0.8],
        "alpha": [0.5, 0.75, 1.0, 1.25],
        "k": [50, 100, 200, 400],
    },
    "ease": {"l2": [10, 50, 200, 800, 3200]},
    "edlae": {"dropout": [0.1, 0.25, 0.5, 0.75], "l2": [1, 10, 50, 200, 800]},
    "ease_tags": {"tag_weight": [0.3, 1, 3, 10, 30], "l2": [10, 50, 200, 800, 3200]},
    "als": {
        "factors": [32, 64, 128, 256],
        "regularization": [0.1, 1, 10, 100],
        "alpha": [1, 3, 10, 30],
    },
    "ials": {
        "regularization": [0.001, 0.003, 0.01, 0.03, 0.1],
        "unobserved": [0.01, 0.03, 0.1, 0.3, 1.0],
        "factors": [64, 128, 256],
    },
}
FIXED_GRIDS = {("rp3beta", "beta"), ("rp3beta", "alpha"), ("edlae", "dropout")}
TUNED_COMPONENTS = tuple(GRIDS)
MAX_FACTORS = 256
ROUNDS = {name: 1 for name in GRIDS} | {"als": 2}


@dataclass(frozen=True)
class Split:
    train: Csr  # warm users' training items (held-out users' rows are empty)
    valid: Csr  # warm users' validation items
    test: Csr  # warm users' test items
    cold_valid: Csr  # the cold-start validation users' every interaction (others empty)
    cold_test: Csr  # the cold-start test users' every interaction (others empty)
    seed: int = 0


def _rows_of(x: Csr, users: NDArray[np.int64]) -> Csr:
    """`x` with every row but `users` emptied."""
    keep = np.zeros(x.shape[0], dtype=np.float32)
    keep[users] = 1.0
    out: Csr = (sp.diags(keep) @ x).tocsr()
    out.eliminate_zeros()
    return out


def split(x: Csr, seed: int) -> Split:
    """Hold out whole users (cold start), then per remaining user a random 80/10/10 split
    with floor rounding: ⌊n/10⌋ test, ⌊n/10⌋ validation."""
    x = x.tocsr().astype(np.float32)
    x.sort_indices()
    rng = np.random.default_rng(seed)
    eligible = np.flatnonzero(np.diff(x.indptr) >= COLD_MIN_INTERACTIONS)
    n_cold = round(COLD_SHARE * len(eligible))
    chosen = rng.permutation(eligible)
    cold_valid, cold_test = np.sort(chosen[:n_cold]), np.sort(chosen[n_cold : 2 * n_cold])
    warm = _rows_of(x, np.setdiff1d(np.arange(x.shape[0]), chosen[: 2 * n_cold]))
    row = np.repeat(np.arange(warm.shape[0]), np.diff(warm.indptr))
    order = np.lexsort((rng.random(warm.nnz), row))  # rows stay in order, items shuffled inside
    position = np.empty(warm.nnz, dtype=np.int64)
    position[order] = np.arange(warm.nnz) - warm.indptr[row[order]]
    tenth = np.diff(warm.indptr)[row] // 10
    part = np.where(position < tenth, 2, np.where(position < 2 * tenth, 1, 0))

    def pick(p: int) -> Csr:
        keep = part == p
        return sp.csr_matrix(
            (warm.data[keep], (row[keep], warm.indices[keep])), shape=x.shape, dtype=np.float32
        )

    return Split(pick(0), pick(1), pick(2), _rows_of(x, cold_valid), _rows_of(x, cold_test), seed)


def reveal(x: Csr, k: int, seed: int) -> tuple[Csr, Csr]:
    """(history, target): per row, k of its interactions and the rest. The order is random
    but does not depend on k, so the k = 1 history is inside the k = 3 one, and so on."""
    x = x.tocsr()
    x.sort_indices()
    rng = np.random.default_rng(seed + 7919)
    row = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    order = np.lexsort((rng.random(x.nnz), row))
    position = np.empty(x.nnz, dtype=np.int64)
    position[order] = np.arange(x.nnz) - x.indptr[row[order]]

    def pick(keep: NDArray[np.bool_]) -> Csr:
        return sp.csr_matrix(
            (x.data[keep], (row[keep], x.indices[keep])), shape=x.shape, dtype=np.float32
        )

    return pick(position < k), pick(position >= k)


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


def evaluate_model(
    model: Component | Hybrid, history: Csr, target: Csr, users: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Per-user metrics (rows follow `users`) of `model` ranking `target` given `history`:
    every model scores the users' history rows, as the API does."""
    parts = [
        ranking_metrics(model.score(history[b]), history[b], target[b]) for b in _batches(users)
    ]
    return np.vstack(parts) if parts else np.zeros((0, 4))


def summary(per_user: NDArray[np.float64]) -> dict[str, float | None]:
    """Mean of each metric; None for an empty slice."""
    if len(per_user) == 0:
        return dict.fromkeys(METRICS, None)
    means = per_user.mean(axis=0)
    return {name: round(float(v), 5) for name, v in zip(METRICS, means, strict=True)}


def cold_cases(cold: Csr, seed: int) -> list[tuple[int, Csr, Csr, NDArray[np.int64]]]:
    """(k, history, target, users) of the held-out users `cold`, for each k of COLD_KS."""
    out = []
    for k in COLD_KS:
        history, target = reveal(cold, k, seed)
        out.append((k, history, target, users_with_items(target)))
    return out


# -- tuning ---------------------------------------------------------------------------------


@dataclass
class Tuned:
    params: dict[str, dict[str, float]] = field(default_factory=dict)
    validation_ndcg: dict[str, float] = field(default_factory=dict)
    cold_validation_ndcg: dict[str, float] = field(default_factory=dict)
    tuned_cold: NDArray[np.float64] = field(default_factory=lambda: np.zeros(len(COMPONENTS)))
    tuned_warm: NDArray[np.float64] = field(default_factory=lambda: np.zeros(len(COMPONENTS)))
    serve: str = "hybrid_tuned"  # the blend that did better on validation

    def best_single(self, cold: bool = False) -> str:
        scores = self.cold_validation_ndcg if cold else self.validation_ndcg
        return max(SINGLE_MODELS, key=lambda n: scores.get(n, float("-inf")))

    def to_params(self) -> dict[str, Any]:
        """What the registry keeps (and `from_params` replays)."""
        return {
            "params": self.params,
            "validation_ndcg@10": {k: round(v, 5) for k, v in self.validation_ndcg.items()},
            "cold_validation_ndcg@10": {
                k: round(v, 5) for k, v in self.cold_validation_ndcg.items()
            },
            "hybrid_weights": {
                "components": list(COMPONENTS),
                "cold_start": [round(float(v), 6) for v in self.tuned_cold],
                "others": [round(float(v), 6) for v in self.tuned_warm],
            },
            "serve": self.serve,
        }

    @classmethod
    def from_params(cls, tuning: dict[str, Any]) -> Tuned:
        """A registered version's choices (also from versions with fewer components: a
        component they lacked has weight 0 and the default parameters)."""
        weights = tuning["hybrid_weights"]
        columns = list(weights["components"])

        def laid_out(values: Sequence[float]) -> NDArray[np.float64]:
            out = np.zeros(len(COMPONENTS))
            for name, v in zip(columns, values, strict=True):
                if name in COMPONENTS:
                    out[COMPONENTS.index(name)] = float(v)
            return out

        params = {n: dict(START.get(n, {})) for n in COMPONENTS}
        params.update({n: dict(p) for n, p in tuning["params"].items() if n in COMPONENTS})
        return cls(
            params=params,
            tuned_cold=laid_out(weights["cold_start"]),
            tuned_warm=laid_out(weights["others"]),
            serve=str(tuning.get("serve", "hybrid_tuned")),
        )


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
    if len(ordered) < 2 or ordered[0] <= 0:
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
    start: dict[str, float] | None = None,
) -> tuple[dict[str, float], float]:
    """Each parameter in turn over its grid (others fixed), `ROUNDS[name]` times; a best
    value on a grid's edge widens that grid (at most 3 times per parameter and round),
    except the bounded grids of FIXED_GRIDS."""
    current = dict(start or START[name])
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
                if (name, param) in FIXED_GRIDS:
                    break
                wider = _widen(grid, current[param], param)
                if wider == grid:
                    break
                grid = wider
    return current, best_value


def _describe(params: dict[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in params.items())


def _sample(users: NDArray[np.int64], seed: int) -> NDArray[np.int64]:
    if len(users) > MAX_TUNING_USERS:
        users = np.sort(np.random.default_rng(seed + 1).choice(users, MAX_TUNING_USERS, False))
    return users


def _candidate_weights(rng: np.random.Generator, n: int) -> list[NDArray[np.float64]]:
    eye = np.eye(len(COMPONENTS))
    out = [eye[i] for i in range(len(COMPONENTS))]
    out += [(eye[i] + eye[j]) / 2 for i in range(len(COMPONENTS)) for j in range(i)]
    out += [rng.dirichlet(np.full(len(COMPONENTS), 0.5)) for _ in range(n)]
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


_Batch = tuple[dict[str, F32], Csr, Csr]  # standardised parts, known items, target items
PARTS_CACHE_FLOATS = 60_000_000  # the fusion's kept scores: at most ~240 MB


class _BlendBatches:
    """The validation users' standardised component scores, batch by batch, computed once
    and kept: every fusion candidate is scored on them. When all users' scores would not
    fit in PARTS_CACHE_FLOATS, a seeded sample of each case's users that fits is used."""

    def __init__(
        self,
        components: dict[str, Component],
        cases: list[tuple[Csr, Csr, NDArray[np.int64]]],
        seed: int,
    ) -> None:
        total = sum(len(users) for _, _, users in cases)
        n_items = cases[0][0].shape[1] if cases else 0
        room = PARTS_CACHE_FLOATS // max(1, n_items * len(components))
        if total > room:
            rng = np.random.default_rng(seed + 3)
            share = room / total
            cases = [
                (h, t, np.sort(rng.choice(u, max(1, int(len(u) * share)), replace=False)))
                for h, t, u in cases
            ]
        self.total = sum(len(users) for _, _, users in cases)
        self.kept: list[_Batch] = []
        for history, target, users in cases:
            for b in _batches(users):
                rows = history[b]
                parts = {n: standardise(m.score(rows)) for n, m in components.items()}
                self.kept.append((parts, rows, target[b]))

    def __iter__(self) -> Iterator[_Batch]:
        return iter(self.kept)


def _blend_ndcg(
    batches: _BlendBatches, candidates: list[NDArray[np.float64]]
) -> NDArray[np.float64]:
    """Mean NDCG over the validation users of each candidate weight vector."""
    out = np.zeros((len(candidates), batches.total))
    offset = 0
    for parts, known, target in batches:
        n = known.shape[0]
        for c, w in enumerate(candidates):
            scores = blend(parts, np.broadcast_to(w, (n, len(w))))
            out[c, offset : offset + n] = ranking_metrics(scores, known, target)[:, 2]
        offset += n
    means: NDArray[np.float64] = out.mean(axis=1)
    return means


def _fit_blend(
    components: dict[str, Component],
    cases: list[tuple[Csr, Csr, NDArray[np.int64]]],
    seed: int,
) -> tuple[NDArray[np.float64], dict[str, float]]:
    """Late fusion fitted on validation users: random weight vectors (every single model,
    every pair, Dirichlet draws) and rounds of perturbing the best one, then coordinate
    ascent (each weight in turn: dropped, halved, doubled, raised). Returns the best weights
    and each single model's NDCG on these users."""
    batches = _BlendBatches(components, cases, seed)
    rng = np.random.default_rng(seed + 2)
    candidates = _candidate_weights(rng, 40)
    best = spec_blend_weights(np.ones(1))[0]
    singles: dict[str, float] = {}
    best_value = float("-inf")
    for round_no in range(3):
        ndcg = _blend_ndcg(batches, candidates)
        if round_no == 0:
            singles = {n: float(ndcg[c]) for c, n in enumerate(COMPONENTS)}
        pick = int(np.argmax(ndcg))
        if ndcg[pick] > best_value:
            best_value, best = float(ndcg[pick]), candidates[pick]
        candidates = _refine(best, rng, 30)
    for _pass in range(2):
        for c in range(len(COMPONENTS)):
            tries = []
            for value in (0.0, best[c] * 0.5, best[c] * 2.0, best[c] + 0.05):
                w = best.copy()
                w[c] = value
                if w.sum() > 0 and not np.allclose(w / w.sum(), best):
                    tries.append(w / w.sum())
            if not tries:
                continue
            ndcg = _blend_ndcg(batches, tries)
            pick = int(np.argmax(ndcg))
            if ndcg[pick] > best_value:
                best_value, best = float(ndcg[pick]), tries[pick]
    return best, singles


def tune(
    train: Csr,
    valid: Csr,
    cold_valid: Csr,
    item_tags: Csr | None,
    *,
    seed: int,
    progress: Progress | None = None,
) -> Tuned:
    """Choose every model's hyper-parameters and the hybrid's weights on validation (the
    test split and the cold test users are not arguments: they cannot influence a choice)."""
    users = _sample(users_with_items(valid), seed)
    steps = _Steps(progress, planned=8)
    tuned = Tuned()

    # More factors than half the items only costs time (and the grid would try 256 on 90).
    factor_cap = max(16, min(MAX_FACTORS, train.shape[1] // 2))

    def ndcg_of(name: str, params: dict[str, float]) -> float:
        if params.get("factors", 0) > factor_cap:
            return float("-inf")
        model = make_component(name, params, seed).fit(train, item_tags)
        return float(evaluate_model(model, train, valid, users)[:, 2].mean()) if len(users) else 0.0

    for name in TUNED_COMPONENTS:
        start = dict(START[name])
        if name == "ease_tags":  # the tags are an addition to EASE: start from its l2
            start["l2"] = tuned.params["ease"]["l2"]
        params, got = _coordinate_search(name, functools.partial(ndcg_of, name), steps, start)
        tuned.params[name], tuned.validation_ndcg[name] = params, got
    for name in ("most_popular", "content"):
        tuned.params[name] = {}
        tuned.validation_ndcg[name] = ndcg_of(name, {})
        steps.step(f"scoring {name}")

    components = {
        n: make_component(n, tuned.params[n], seed).fit(train, item_tags) for n in COMPONENTS
    }
    steps.step("fitting the hybrid's components")
    cold = [(h, t, _sample(u, seed)) for _, h, t, u in cold_cases(cold_valid, seed)]
    # Nothing to tune on: the spec's warm-user blend.
    tuned.tuned_cold = tuned.tuned_warm = spec_blend_weights(np.ones(1))[0]
    if len(users):
        tuned.tuned_warm, _ = _fit_blend(components, [(train, valid, users)], seed)
        steps.step("fitting the blend on the validation users")
    if any(len(u) for _, _, u in cold):
        tuned.tuned_cold, tuned.cold_validation_ndcg = _fit_blend(components, cold, seed)
        steps.step("fitting the cold-start blend on the held-out validation users")
    else:
        tuned.tuned_cold = tuned.tuned_warm
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


def fit_hybrid(
    x: Csr, item_tags: Csr | None, tuned: Tuned, seed: int, *, every_component: bool = False
) -> Hybrid:
    """The served hybrid: the components its blends use and those the API always needs
    (`SERVED_ALWAYS`); `every_component` fits all of them (the offline table)."""
    names = (
        COMPONENTS
        if every_component
        else [
            n
            for n in COMPONENTS
            if n in SERVED_ALWAYS or n in used_components(tuned.tuned_cold, tuned.tuned_warm)
        ]
    )
    components = {n: make_component(n, tuned.params[n], seed).fit(x, item_tags) for n in names}
    return Hybrid(components, tuned.tuned_cold, tuned.tuned_warm, policy=tuned.serve)


# -- the report -----------------------------------------------------------------------------


@dataclass
class PerUser:
    """Per test user NDCG@10 of each model (warm users; cold users averaged over k)."""

    warm: dict[str, NDArray[np.float64]]
    cold: dict[str, NDArray[np.float64]]


def _per_user_report(
    hybrid: Hybrid, tuned: Tuned, s: Split, history: Csr, progress: Progress | None
) -> tuple[dict[str, Any], PerUser]:
    users = users_with_items(s.test)
    cases = cold_cases(s.cold_test, s.seed)
    cold_users = users_with_items(s.cold_test)
    models: dict[str, dict[str, float | None]] = {}
    cold_start: dict[str, dict[str, float | None]] = {}
    by_k: dict[str, dict[str, dict[str, float | None]]] = {str(k): {} for k in COLD_KS}
    per_user = PerUser({}, {})
    for name in MODELS:
        if name in hybrid.components:
            model: Component | Hybrid = hybrid.components[name]
        else:
            model = dataclasses.replace(hybrid, policy=name)
        warm = evaluate_model(model, history, s.test, users)
        models[name], per_user.warm[name] = summary(warm), warm[:, 2]
        cold_rows = []
        for k, h, t, u in cases:
            got = evaluate_model(model, h, t, u)
            by_k[str(k)][name] = summary(got)
            cold_rows.append(got)
        pooled = np.vstack(cold_rows) if cold_rows else np.zeros((0, 4))
        cold_start[name] = summary(pooled)
        # every cold test user has a target at each k (≥ 6 interactions): average over k
        per_user.cold[name] = (
            np.mean([r[:, 2] for r in cold_rows], axis=0) if len(cold_users) else np.zeros(0)
        )
        if progress is not None:
            progress(f"testing {name}", 1, 1)
    return {
        "models": models,
        "cold_start": cold_start,
        "cold_start_by_k": by_k,
        "users_evaluated": len(users),
        "cold_start_users": len(cold_users),
    }, per_user


def paired_bootstrap(
    groups: Sequence[tuple[NDArray[np.float64], NDArray[np.float64]]],
    *,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> dict[str, Any]:
    """Mean of a - b over all users and its 95 % percentile interval, resampling users with
    replacement within each group (a group is one split: seeds are strata)."""
    diffs = [a - b for a, b in groups if len(a)]
    if not diffs:
        return {"difference": None, "interval": None, "users": 0}
    rng = np.random.default_rng(seed + 104729)
    total = sum(len(d) for d in diffs)
    sums = np.zeros(resamples)
    for d in diffs:
        step = max(1, 2_000_000 // len(d))  # resamples at a time: bounded index arrays
        for start in range(0, resamples, step):
            end = min(resamples, start + step)
            sums[start:end] += d[rng.integers(0, len(d), size=(end - start, len(d)))].sum(axis=1)
    means = sums / total
    lo, hi = np.percentile(means, [2.5, 97.5])
    point = float(np.concatenate(diffs).mean())
    return {"difference": round(point, 5), "interval": [round(float(lo), 5), round(float(hi), 5)],
            "users": total}  # fmt: skip


def require_test_users(s: Split) -> None:
    """Raise NothingToEvaluate when the split has no test user, warm or cold."""
    if not len(users_with_items(s.test)) and not len(users_with_items(s.cold_test)):
        raise NothingToEvaluate(
            "no user has enough interactions to evaluate: a user needs at least 10 (one held "
            f"out for validation, one for test) or {COLD_MIN_INTERACTIONS} (held out whole "
            "for cold start), with enough such users to hold some out"
        )


def evaluate_split(
    data: Interactions,
    s: Split,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    allow_empty: bool = False,
) -> tuple[dict[str, Any], Tuned, PerUser]:
    """Tune on validation, refit on train + validation, report on the test users; raises
    NothingToEvaluate when there are none, unless `allow_empty` (training on a young
    platform still needs the choices, made with defaults where nothing can be measured)."""
    if not allow_empty:
        require_test_users(s)
    tuned = tune(s.train, s.valid, s.cold_valid, data.item_tags, seed=seed, progress=progress)
    history = (s.train + s.valid + s.cold_valid).tocsr()
    hybrid = fit_hybrid(history, data.item_tags, tuned, seed, every_component=True)
    report, per_user = _per_user_report(hybrid, tuned, s, history, progress)
    return (
        {**report, "dataset": dataset_summary(data), "tuning": tuned.to_params()},
        tuned,
        per_user,
    )


def dataset_summary(data: Interactions) -> dict[str, Any]:
    return {
        "users": data.matrix.shape[0], "items": data.matrix.shape[1],
        "interactions": data.n_interactions,
        "tags": 0 if data.item_tags is None else data.item_tags.shape[1],
        "duplicate_rows_summed": data.duplicate_rows,
    }  # fmt: skip


def score_configuration(
    data: Interactions, s: Split, tuned: Tuned, *, seed: int = 0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per test user NDCG@10 of another version's choices (e.g. the active model's) refitted
    on this split's training data: (warm users, cold users averaged over k), the same users
    in the same order as `evaluate_split`'s, so the two can be compared pairwise."""
    history = (s.train + s.valid + s.cold_valid).tocsr()
    hybrid = fit_hybrid(history, data.item_tags, tuned, seed)
    warm = evaluate_model(hybrid, history, s.test, users_with_items(s.test))[:, 2]
    cases = cold_cases(s.cold_test, s.seed)
    cold = [evaluate_model(hybrid, h, t, u)[:, 2] for _, h, t, u in cases]
    return warm, (np.mean(cold, axis=0) if len(cold[0]) else np.zeros(0))


def _intervals(runs: list[tuple[Tuned, PerUser]], seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": f"paired bootstrap over test users, {BOOTSTRAP_RESAMPLES} resamples, 95 %"
        + (", seeds as strata" if len(runs) > 1 else ""),
        "metric": "ndcg@10",
    }
    comparisons: dict[str, Any] = {}
    for slice_name, cold in (("all_users", False), ("cold_start", True)):
        groups = []
        for tuned, per_user in runs:
            got = per_user.cold if cold else per_user.warm
            groups.append((got["hybrid_tuned"], got[tuned.best_single(cold)]))
        comparisons[slice_name] = {
            "best_single": runs[0][0].best_single(cold),  # chosen on validation
            "best_single_per_seed": [tuned.best_single(cold) for tuned, _ in runs],
            **paired_bootstrap(groups, seed=seed),
        }
    out["hybrid_tuned_minus_best_single"] = comparisons
    return out


def evaluate_and_tune(
    data: Interactions,
    *,
    seed: int = 0,
    seeds: int = 1,
    progress: Progress | None = None,
    allow_empty: bool = False,
) -> tuple[dict[str, Any], Tuned, Split, PerUser]:
    """`evaluate` on splits `seed`, `seed` + 1, … (`seeds` of them); the metrics are means
    over the splits, the intervals pool their users. Also returns the first split's
    choices, split and per-user scores (training reuses them)."""
    runs: list[tuple[dict[str, Any], Tuned, Split, PerUser]] = []
    for n in range(seeds):
        s = split(data.matrix, seed + n)
        result, tuned, per_user = evaluate_split(
            data, s, seed=seed + n, progress=progress, allow_empty=allow_empty
        )
        runs.append((result, tuned, s, per_user))
    first = runs[0][0]
    merged = dict(first)
    if seeds > 1:
        for section in ("models", "cold_start"):
            merged[section] = {
                name: _mean_metrics([r[0][section][name] for r in runs]) for name in first[section]
            }
        merged["cold_start_by_k"] = {
            k: {name: _mean_metrics([r[0]["cold_start_by_k"][k][name] for r in runs])
                for name in first["cold_start_by_k"][k]}
            for k in first["cold_start_by_k"]
        }  # fmt: skip
    merged["seeds"] = [seed + n for n in range(seeds)]
    merged["per_seed"] = [
        {"seed": seed + n, "users_evaluated": r[0]["users_evaluated"],
         "cold_start_users": r[0]["cold_start_users"],
         "ndcg@10": {k: v["ndcg@10"] for k, v in r[0]["models"].items()},
         "cold_start_ndcg@10": {k: v["ndcg@10"] for k, v in r[0]["cold_start"].items()}}
        for n, r in enumerate(runs)
    ]  # fmt: skip
    merged["intervals"] = _intervals([(r[1], r[3]) for r in runs], seed)
    return merged, runs[0][1], runs[0][2], runs[0][3]


def _mean_metrics(rows: list[dict[str, float | None]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for m in METRICS:
        values = [float(v) for r in rows if (v := r[m]) is not None]
        out[m] = round(float(np.mean(values)), 5) if values else None
    return out


def evaluate(
    data: Interactions, *, seed: int = 0, seeds: int = 1, progress: Progress | None = None
) -> dict[str, Any]:
    """Tune on validation, then report every model on test, overall and for cold start."""
    return evaluate_and_tune(data, seed=seed, seeds=seeds, progress=progress)[0]
