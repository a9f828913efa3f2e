"""The offline evaluation of the recommenders: the split (whole users held out for cold
start), the metrics, honest tuning (the test users never choose anything), widened grids,
one ALS (the table's is the served one), paired scoring of another version's choices, and
`mysetlist ml evaluate` itself (its JSON contract, its input rules and its one-line errors)."""

from __future__ import annotations

import csv
import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
import scipy.sparse as sp

from mysetlist.ml.recommendations.algorithms import Als, Hybrid, make_component
from mysetlist.ml.recommendations.datasets import from_triples, read_interactions
from mysetlist.ml.recommendations.evaluation import (
    COLD_KS,
    MODELS,
    _coordinate_search,
    _Steps,
    evaluate_model,
    evaluate_split,
    ranking_metrics,
    reveal,
    score_configuration,
    split,
    users_with_items,
)
from mysetlist.ml.recommendations.training import (
    RecommenderModel,
    model_from_bytes,
    model_to_bytes,
)


def _planted(
    n_users: int = 300, n_items: int = 90, genres: int = 6, seed: int = 0
) -> tuple[list[str], list[str], list[float], tuple[list[str], list[str], list[float]]]:
    """Users who draw items from one or two favourite genres, popular items more often."""
    rng = np.random.default_rng(seed)
    genre = rng.integers(0, genres, n_items)
    popularity = rng.pareto(1.5, n_items) + 0.2
    users: list[str] = []
    items: list[str] = []
    weights: list[float] = []
    for u in range(n_users):
        taste = rng.dirichlet(np.full(genres, 0.2))
        p = taste[genre] * popularity
        picks = rng.choice(n_items, size=int(rng.integers(10, 30)), replace=False, p=p / p.sum())
        users += [f"u{u}"] * len(picks)
        items += [f"i{i}" for i in picks]
        weights += [float(w) for w in rng.integers(1, 40, len(picks))]
    tags = ([f"i{i}" for i in range(n_items)], [f"g{g}" for g in genre], [1.0] * n_items)
    return users, items, weights, tags


def test_split_holds_out_whole_users_then_splits_the_rest_80_10_10_with_floor_rounding() -> None:
    sizes = [9, 10, 25, 3] + [12] * 20  # 23 users with >= 6 interactions: 2 + 2 held out
    rows = np.repeat(np.arange(len(sizes)), sizes)
    cols = np.concatenate([np.arange(n) for n in sizes])
    x = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(sizes), 30))
    s = split(x, seed=5)
    cold = np.concatenate([users_with_items(s.cold_valid), users_with_items(s.cold_test)])
    assert len(users_with_items(s.cold_valid)) == len(users_with_items(s.cold_test)) == 2
    assert len(set(cold)) == 4
    assert 3 not in cold
    for u in cold:  # a held-out user's every interaction, and nothing of them elsewhere
        assert (s.cold_valid + s.cold_test)[u].nnz == sizes[u]
        assert (s.train + s.valid + s.test)[u].nnz == 0
    warm = np.setdiff1d(np.arange(len(sizes)), cold)
    expected = np.array(sizes)[warm] // 10
    for m in (s.test, s.valid):
        assert np.diff(m.indptr)[warm].tolist() == expected.tolist()
    union = (s.train + s.valid + s.test + s.cold_valid + s.cold_test).toarray()
    assert (union == x.toarray()).all()  # disjoint and complete
    again = split(x, seed=5)
    assert (again.test != s.test).nnz == 0  # a seed gives the same split
    assert (again.cold_test != s.cold_test).nnz == 0


def test_a_held_out_user_reveals_k_interactions_nested_and_the_rest_is_the_target() -> None:
    x = sp.csr_matrix(np.ones((3, 8), np.float32))
    before: sp.csr_matrix | None = None
    for k in COLD_KS:
        history, target = reveal(x, k, seed=1)
        assert np.diff(history.indptr).tolist() == [k] * 3
        assert ((history + target).toarray() == 1).all()
        assert history.multiply(target).nnz == 0
        if before is not None:
            assert before.multiply(history).nnz == before.nnz  # k=1 inside k=3 inside k=5
        before = history


def test_metrics_mask_known_items_and_use_idcg_over_min_test_and_10() -> None:
    scores = np.array([[9.0, 8.0, 7.0, 6.0] + [0.0] * 16], dtype=np.float32)
    known = sp.csr_matrix(([1.0], ([0], [0])), shape=(1, 20))  # item 0 is in the history
    target = sp.csr_matrix(([1.0, 1.0], ([0, 0], [1, 3])), shape=(1, 20))
    precision, recall, ndcg, hit = ranking_metrics(scores, known, target)[0]
    # item 0 masked: ranking 1, 2, 3 ... relevant at ranks 1 and 3
    dcg = 1 + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)
    assert ndcg == pytest.approx(dcg / idcg)
    assert (precision, recall, hit) == (pytest.approx(0.2), pytest.approx(1.0), 1.0)


def _scrambled(m: sp.csr_matrix, seed: int) -> sp.csr_matrix:
    """The same rows with as many items each, drawn at random."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    got = sp.csr_matrix(
        (np.ones(m.nnz, np.float32), (rows, rng.integers(0, m.shape[1], m.nnz))), shape=m.shape
    )
    got.data[:] = 1.0
    return got


def test_the_test_users_never_influence_a_choice() -> None:
    """Same train, validation and cold validation users; unrelated test items and cold test
    users' items: identical choices."""
    users, items, weights, tags = _planted(n_users=150, n_items=60)
    data = from_triples(users, items, weights, tags)
    s = split(data.matrix, seed=1)
    other = dataclasses.replace(s, test=_scrambled(s.test, 9), cold_test=_scrambled(s.cold_test, 8))
    first, tuned_a, _ = evaluate_split(data, s, seed=1)
    second, tuned_b, _ = evaluate_split(data, other, seed=1)
    assert tuned_a.params == tuned_b.params
    assert tuned_a.validation_ndcg == tuned_b.validation_ndcg
    assert (tuned_a.tuned_warm == tuned_b.tuned_warm).all()
    assert (tuned_a.tuned_cold == tuned_b.tuned_cold).all()
    assert first["tuning"] == second["tuning"]
    assert first["models"] != second["models"]  # the test users only change the report
    assert first["cold_start"] != second["cold_start"]


def test_the_als_in_the_table_is_the_served_als() -> None:
    """The table scores ALS through `evaluate_model`; the API loads the artifact and scores
    the user's history row. Same vectors, same scores, same metrics; and the vector is
    implicit's exact user step with confidence C = 1 + alpha*log1p(x)."""
    users, items, weights, tags = _planted(n_users=120, n_items=50)
    data = from_triples(users, items, weights, tags)
    s = split(data.matrix, seed=2)
    history = (s.train + s.valid).tocsr()
    als = make_component("als", {"factors": 16, "regularization": 2.0, "alpha": 5.0}).fit(history)
    assert isinstance(als, Als)
    assert isinstance(als, type(make_component("als", {})))
    w = np.zeros(9)
    w[6] = 1.0
    served_model = RecommenderModel(
        Hybrid({"als": als}, w, w), data.user_ids, np.arange(len(data.item_ids), dtype=np.int64)
    )
    served = model_from_bytes(model_to_bytes(served_model)).hybrid.components["als"]
    assert isinstance(served, Als)
    test_users = users_with_items(s.test)
    table = evaluate_model(als, history, s.test, test_users)
    assert np.array_equal(evaluate_model(served, history, s.test, test_users), table)
    u = int(test_users[0])
    api_row = sp.csr_matrix(history[u].toarray())  # the row the API builds from SQL
    # (one row against a batch: float32 sums may differ in the last bit)
    np.testing.assert_allclose(
        served.score(api_row)[0], als.score(history[test_users])[0], rtol=1e-5, atol=1e-6
    )
    # the vectors kept for training users (similar fans) come from the same step
    np.testing.assert_allclose(
        als.user_factors[test_users], served.user_vectors(history[test_users]), atol=1e-6
    )
    # implicit's objective: (YtY + Yt(C-1)Y + lambda I) x = Yt C p, C = 1 + alpha log1p(x)
    y = als.item_factors.astype(np.float64)
    r = history[u]
    c = 1.0 + 5.0 * np.log1p(r.data.astype(np.float64))
    yi = y[r.indices]
    a = y.T @ y + (yi.T * (c - 1.0)) @ yi + 2.0 * np.eye(16)
    np.testing.assert_allclose(a @ served.user_vectors(r)[0], yi.T @ c, rtol=1e-3, atol=1e-3)


def test_another_versions_choices_are_scored_on_the_same_users() -> None:
    """Promotion's comparison: the new choices replayed through `score_configuration` give
    exactly the per-user numbers the evaluation reported, user for user."""
    users, items, weights, tags = _planted(n_users=150, n_items=60)
    data = from_triples(users, items, weights, tags)
    s = split(data.matrix, seed=4)
    result, tuned, per_user = evaluate_split(data, s, seed=4)
    warm, cold = score_configuration(data, s, tuned, seed=4)
    assert len(warm) == result["users_evaluated"]
    assert len(cold) == result["cold_start_users"] > 0
    np.testing.assert_array_equal(warm, per_user.warm[tuned.serve])
    np.testing.assert_array_equal(cold, per_user.cold[tuned.serve])


def test_a_best_value_on_a_grids_edge_widens_the_grid() -> None:
    seen: list[float] = []

    def score(params: dict[str, float]) -> float:
        seen.append(params["l2"])
        return -abs(math.log(params["l2"] / 20000))  # best far beyond the grid's top (3200)

    best, _ = _coordinate_search("ease", score, _Steps(None, 0))
    assert best["l2"] == pytest.approx(12800)  # 3200 * 4, then 51200 was worse
    assert max(seen) == pytest.approx(51200)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mysetlist", "ml", "evaluate", *args],
        capture_output=True, text=True, timeout=280,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("user_id,item_id,weight\nu1,a1,3\nu1,a2,abc\n",
         "interactions.csv:3:3 (column 'weight'): 'abc' is not a number"),
        ("u1,a1,3\nu1,,2\n", "interactions.csv:2:2 (column 'item_id'): is empty"),
        ("u1,a1,3\nu1,a2,-1\n",
         "interactions.csv:2:3 (column 'weight'): must be a positive finite number"),
        ("u1,a1,3\nu1,a2,1,9\n",
         "interactions.csv:2: 4 fields, expected user_id,item_id,weight (weight optional)"),
        ('u1,a1,3\nu1,"a2\n', "interactions.csv:2: unexpected end of data"),
    ],
)  # fmt: skip
def test_a_malformed_interactions_file_gets_one_line_naming_file_line_and_column(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "interactions.csv"
    path.write_text(content)
    done = _run("--interactions", str(path), "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"{tmp_path}/{expected}\n"


def test_a_malformed_tags_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "i.csv").write_text("u1,a1,3\n")
    (tmp_path / "t.csv").write_text("item_id,tag,weight\na1,rock,x\n")
    done = _run("--interactions", str(tmp_path / "i.csv"), "--item-tags", str(tmp_path / "t.csv"))
    assert done.returncode == 2
    assert done.stderr == f"{tmp_path}/t.csv:2:3 (column 'weight'): 'x' is not a number\n"


def test_a_header_a_byte_order_mark_and_duplicate_rows(tmp_path: Path) -> None:
    path = tmp_path / "i.csv"
    path.write_bytes("\ufeffuser_id,weight\nu1,a1,2\nu1,a2\nu1,a1,3\n".encode())
    data = read_interactions(path)
    assert data.user_ids == ["u1"]  # neither the header nor the mark became a user
    assert data.item_ids == ["a1", "a2"]
    assert data.matrix.toarray().tolist() == [[5.0, 1.0]]
    assert data.duplicate_rows == 1
    (tmp_path / "plays.csv").write_text("user,artist,plays\nu1,a1,7\n")
    assert read_interactions(tmp_path / "plays.csv").user_ids == ["u1"]


def test_a_dataset_with_no_evaluable_user_exits_2_with_a_sentence(tmp_path: Path) -> None:
    (tmp_path / "i.csv").write_text("".join(f"u{u},a{i},1\n" for u in range(4) for i in range(3)))
    done = _run("--interactions", str(tmp_path / "i.csv"), "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("no user has enough interactions to evaluate: ")
    assert done.stderr.count("\n") == 1


def test_evaluate_prints_one_json_object_with_every_model(tmp_path: Path) -> None:
    users, items, weights, (t_items, t_tags, t_weights) = _planted(n_users=200)
    with (tmp_path / "i.csv").open("w", newline="") as f:
        csv.writer(f).writerows(zip(users, items, weights, strict=True))
    with (tmp_path / "t.csv").open("w", newline="") as f:
        csv.writer(f).writerows(zip(t_items, t_tags, t_weights, strict=True))
    done = _run("--interactions", str(tmp_path / "i.csv"), "--item-tags", str(tmp_path / "t.csv"),
                "--seed", "3", "--seeds", "2", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout)  # exactly one JSON document
    assert done.stdout.count("\n") == 1
    sections = [result["models"], result["cold_start"],
                *(result["cold_start_by_k"][str(k)] for k in COLD_KS)]  # fmt: skip
    for section in sections:
        assert set(MODELS) <= set(section)
        for metrics in section.values():
            assert set(metrics) == {"precision@10", "recall@10", "ndcg@10", "hit@10"}
            assert all(v is not None for v in metrics.values())  # cold start is measured
    assert result["cold_start_users"] > 0
    assert result["seeds"] == [3, 4]
    assert [r["seed"] for r in result["per_seed"]] == [3, 4]
    ndcg = {name: m["ndcg@10"] for name, m in result["models"].items()}
    assert ndcg["hybrid_tuned"] > ndcg["most_popular"]
    assert (
        result["cold_start"]["hybrid_tuned"]["ndcg@10"] > result["cold_start"]["content"]["ndcg@10"]
    )
    for slice_name in ("all_users", "cold_start"):
        got = result["intervals"]["hybrid_tuned_minus_best_single"][slice_name]
        lo, hi = got["interval"]
        assert lo <= got["difference"] <= hi
        assert got["best_single"] == got["best_single_per_seed"][0]
        assert set(got["best_single_per_seed"]) <= set(MODELS) - {"hybrid_spec", "hybrid_tuned"}
        count = "users_evaluated" if slice_name == "all_users" else "cold_start_users"
        assert got["users"] == sum(r[count] for r in result["per_seed"])  # both seeds' users
