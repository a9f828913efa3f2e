"""The setlist model and its offline evaluation, on histories built here."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mysetlist.demo.tour_setlists import generate_history
from mysetlist.ml.setlists.offline_evaluation import (
    evaluate,
    first_test_index,
    rolling_rankings,
    score_ranking,
)
from mysetlist.ml.setlists.predictor import predict_setlist
from mysetlist.ml.setlists.setlist_history import (
    PlayedShow,
    SetlistFileError,
    UpcomingShow,
    parse_setlists,
)

CITIES = ["Berlin", "Paris", "London", "Madrid", "Oslo", "Lisbon"]


def _history(style: str, shows: int, seed: int = 7) -> list[PlayedShow]:
    generated = generate_history(
        np.random.default_rng(seed), style=style, shows=shows, end=date(2026, 11, 1),
        cities=CITIES,
    )  # fmt: skip
    return [
        PlayedShow(f"{style}-{j}", s.day, style, tuple(f"song {x}" for x in s.songs),
                   None, s.city, s.tour)
        for j, s in enumerate(generated.shows)
    ]  # fmt: skip


def test_score_ranking_by_hand() -> None:
    truth = frozenset({"a", "b", "c"})
    scores = score_ranking(["a", "x", "b", "y"], truth, 3)
    # top 3 = a, x, b: 2 hits of 3
    assert scores["f1"] == pytest.approx(2 / 3)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert scores["ndcg"] == pytest.approx(dcg / idcg)
    assert scores["recall@10"] == pytest.approx(2 / 3)


def test_the_test_shows_are_the_last_fifth() -> None:
    assert first_test_index(10) == 8
    assert first_test_index(5) == 4
    assert first_test_index(2) == 1  # at least one test show, never the first


def test_no_prediction_sees_its_own_show_or_a_later_one() -> None:
    history = _history("mixed", 40)
    baseline = list(rolling_rankings(history))
    assert len(baseline) == 8
    for position, (target, _k, rankings) in enumerate(baseline):
        t = target.index
        # Rewrite the songs of show t and everything after it; what was predicted for t
        # must not move (its date, city and tour are known before the show).
        altered = history[:t] + [
            replace(show, songs=tuple(f"other {t} {i}" for i in range(len(show.songs))))
            for show in history[t:]
        ]
        again = list(rolling_rankings(altered))[position]
        assert again[0].index == t
        assert again[2] == rankings, f"prediction for show {t} saw later setlists"


def test_model_beats_both_baselines_on_a_rotating_artist() -> None:
    result = evaluate({"rotator": _history("rotator", 120)})
    models = result["artists"]["rotator"]["models"]  # type: ignore[index]
    best_baseline = max(models["last_show"]["f1"], models["recent_frequency"]["f1"])
    assert models["model"]["f1"] > best_baseline * 1.1


def test_prediction_ranks_songs_with_reasons_and_length() -> None:
    history = _history("fixed", 30)
    upcoming = UpcomingShow("next", history[-1].date + timedelta(days=2), "Oslo",
                            history[-1].tour)  # fmt: skip
    prediction = predict_setlist(history, upcoming)
    lengths = [len(s.songs) for s in history[-5:]]
    assert min(lengths) - 1 <= prediction.length <= max(lengths) + 1
    probabilities = [s.probability for s in prediction.songs]
    assert probabilities == sorted(probabilities, reverse=True)
    top = prediction.songs[: prediction.length]
    core = set(history[-1].songs) & set(history[-2].songs) & set(history[-3].songs)
    assert len({s.song for s in top} & core) >= 0.8 * len(core)
    assert all(s.reason for s in prediction.songs)
    opener = history[-1].songs[0]
    if all(s.songs[0] == opener for s in history[-4:]):
        reasons = {s.song: s.reason for s in prediction.songs}
        assert "opened the last" in reasons[opener] or "played at" in reasons[opener]


def test_model_works_with_five_past_shows() -> None:
    history = _history("mixed", 5)
    upcoming = UpcomingShow("next", history[-1].date + timedelta(days=1), None, None)
    prediction = predict_setlist(history, upcoming)
    assert prediction.songs
    assert 0 < prediction.songs[0].probability < 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("show_id,date,artist,song\n", "x.csv:1: column 'position': missing from the header"),
        ("show_id,date,artist,position,song\n1,2026-13-01,A,1,S\n",
         "x.csv:2: column 'date': not a date (YYYY-MM-DD)"),
        ("show_id,date,artist,position,song\n1,2026-01-01,A,1,S\n1,2026-01-01,A,one,T\n",
         "x.csv:3: column 'position': not a whole number"),
        ("show_id,date,artist,position,song\n1,2026-01-01,A,1,S\n1,2026-01-02,A,2,T\n",
         "x.csv:3: column 'date': show 1 has date 2026-01-01 on line 2"),
        ("show_id,date,artist,position,song\n1,2026-01-01,A,1,\n",
         "x.csv:2: column 'song': is empty"),
        ("show_id,date,artist,position,song\n1,2026-01-01,A,1,S,extra\n",
         "x.csv:2: 6 fields, the header has 5"),
    ],
)  # fmt: skip
def test_malformed_csv_names_line_and_column(text: str, expected: str) -> None:
    import csv
    import io

    with pytest.raises(SetlistFileError) as caught:
        parse_setlists(csv.reader(io.StringIO(text)), "x.csv")
    assert str(caught.value) == expected


def test_cli_reports_a_malformed_file_in_one_line(tmp_path: Path) -> None:
    from mysetlist.cli import cli

    bad = tmp_path / "bad.csv"
    bad.write_text("show_id,date,artist,position,song\n1,2026-01-01,A,0,S\n")
    result = CliRunner().invoke(cli, ["ml", "evaluate-setlists", "--setlists", str(bad)])
    assert result.exit_code == 2
    assert result.output.strip() == f"{bad}:2: column 'position': must be 1 or more"


def test_cli_json_shape(tmp_path: Path) -> None:
    import orjson

    from mysetlist.cli import cli

    rows = ["show_id,date,artist,position,song,venue,city,tour"]
    for artist, style in (("Fixed Band", "fixed"), ("Rotating Band", "rotator")):
        for show in _history(style, 20):
            rows += [f"{artist}-{show.show_id},{show.date},{artist},{i + 1},{song},V,{show.city},"
                     f"{show.tour}" for i, song in enumerate(show.songs)]  # fmt: skip
    path = tmp_path / "setlists.csv"
    path.write_text("\n".join(rows) + "\n")
    result = CliRunner().invoke(cli, ["ml", "evaluate-setlists", "--setlists", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.stdout)
    assert set(data) == {"artists", "overall"}
    assert set(data["artists"]) == {"Fixed Band", "Rotating Band"}
    for row in data["artists"].values():
        assert row["shows"] == 20
        assert set(row["models"]) >= {"last_show", "recent_frequency", "model"}
        for metrics in row["models"].values():
            assert set(metrics) == {"f1", "ndcg", "recall@10"}
            assert all(0.0 <= v <= 1.0 for v in metrics.values())
