"""The offline evaluation of the recommenders: the split, the metrics, honest tuning (the
test split never chooses anything), widened grids, and `mysetlist ml evaluate` itself
(its JSON contract and its one-line errors for malformed files)."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
import scipy.sparse as sp

from mysetlist.ml.recommendations.datasets import from_triples
from mysetlist.ml.recommendations.evaluation import (
    MODELS,
    Split,
    _coordinate_search,
    _Steps,
    evaluate_split,
    ranking_metrics,
    split,
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


def test_split_is_per_user_80_10_10_with_floor_rounding() -> None:
    sizes = [9, 10, 25, 3]
    rows = np.repeat(np.arange(len(sizes)), sizes)
    cols = np.concatenate([np.arange(n) for n in sizes])
    x = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(4, 30))
    s = split(x, seed=5)
    for m, expected in ((s.test, [0, 1, 2, 0]), (s.valid, [0, 1, 2, 0])):
        assert np.diff(m.indptr).tolist() == expected
    assert np.diff(s.train.indptr).tolist() == [9, 8, 21, 3]
    union = (s.train + s.valid + s.test).toarray()
    assert (union == x.toarray()).all()  # disjoint and complete
    again = split(x, seed=5)
    assert (again.test != s.test).nnz == 0  # a seed gives the same split


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


def test_the_test_split_never_influences_a_choice() -> None:
    """Same train and validation, two unrelated test splits: identical choices."""
    users, items, weights, tags = _planted(n_users=150, n_items=60)
    data = from_triples(users, items, weights, tags)
    s = split(data.matrix, seed=1)
    rng = np.random.default_rng(9)
    scrambled = sp.csr_matrix(
        (np.ones(s.test.nnz, np.float32), (np.repeat(np.arange(s.test.shape[0]),
         np.diff(s.test.indptr)), rng.integers(0, s.test.shape[1], s.test.nnz))),
        shape=s.test.shape,
    )  # fmt: skip
    first, tuned_a = evaluate_split(data, s, seed=1)
    second, tuned_b = evaluate_split(data, Split(s.train, s.valid, scrambled), seed=1)
    assert tuned_a.params == tuned_b.params
    assert tuned_a.validation_ndcg == tuned_b.validation_ndcg
    assert (tuned_a.tuned_warm == tuned_b.tuned_warm).all()
    assert first["tuning"] == second["tuning"]
    assert first["models"] != second["models"]  # the test split only changes the report


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


def test_evaluate_prints_one_json_object_with_every_model(tmp_path: Path) -> None:
    users, items, weights, (t_items, t_tags, t_weights) = _planted()
    with (tmp_path / "i.csv").open("w", newline="") as f:
        csv.writer(f).writerows(zip(users, items, weights, strict=True))
    with (tmp_path / "t.csv").open("w", newline="") as f:
        csv.writer(f).writerows(zip(t_items, t_tags, t_weights, strict=True))
    done = _run("--interactions", str(tmp_path / "i.csv"), "--item-tags", str(tmp_path / "t.csv"),
                "--seed", "3", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout)  # exactly one JSON document
    assert done.stdout.count("\n") == 1
    for section in ("models", "cold_start"):
        assert set(MODELS) <= set(result[section])
        for metrics in result[section].values():
            assert set(metrics) == {"precision@10", "recall@10", "ndcg@10", "hit@10"}
    ndcg = {name: m["ndcg@10"] for name, m in result["models"].items()}
    assert ndcg["hybrid_tuned"] > ndcg["most_popular"]
