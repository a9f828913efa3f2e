"""Interaction data for the recommenders: users x items confidence matrix plus item tags,
read from CSV files (any public dataset: `user_id,item_id,weight` and `item_id,tag,weight`,
UTF-8 with or without a byte-order mark, an optional header line) or built from arrays.
Rows repeating a (user, item) pair are summed, and counted so the report can say so."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

INTERACTION_COLUMNS = ("user_id", "item_id", "weight")
TAG_COLUMNS = ("item_id", "tag", "weight")
MAX_ID_LENGTH = 200
# A first line with one of these as a field is a header (`user_id,weight`, `user,artist,plays`).
HEADER_WORDS = frozenset({
    "user_id", "item_id", "weight", "user", "item", "artist", "artist_id", "artist_name", "tag",
    "tag_id", "tag_name", "name", "count", "plays", "playcount", "play_count", "rating",
    "score", "value", "userid", "itemid", "artistid", "tagid",
})  # fmt: skip


class InteractionFileError(ValueError):
    """A malformed input file; the message (one line) names the file, line and column."""

    def __init__(self, path: str, line: int, column: int | None, name: str | None, problem: str):
        where = f"{path}:{line}" + (f":{column} (column {name!r})" if column else "")
        super().__init__(f"{where}: {problem}")


@dataclass
class Interactions:
    matrix: sp.csr_matrix  # users x items, summed weights (float32)
    user_ids: list[str]
    item_ids: list[str]
    item_tags: sp.csr_matrix | None = None  # items x tags
    tag_names: list[str] | None = None
    duplicate_rows: int = 0  # rows that repeated a (user, item) pair and were summed into it

    @property
    def n_interactions(self) -> int:
        return int(self.matrix.nnz)


def _is_header(values: list[str]) -> bool:
    """A first line is a header when a field is a column name, or its weight no number."""
    fields = [v.strip().lower() for v in values]
    if any(f in HEADER_WORDS for f in fields):
        return True
    if len(fields) == 3 and fields[2]:
        try:
            float(fields[2])
        except ValueError:
            return True
    return False


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a CSV file; an optional header line is skipped."""
    name = str(path)
    try:
        # utf-8-sig: a byte-order mark (spreadsheet exports write one) is not part of a field
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise InteractionFileError(name, 0, None, None, "no such file") from None
    with handle:
        reader = csv.reader(handle, strict=True)
        try:
            for values in reader:
                line = reader.line_num
                if line == 1 and _is_header(values):
                    continue
                if not any(v.strip() for v in values):
                    continue
                yield line, values
        except UnicodeDecodeError as exc:
            raise InteractionFileError(
                name, reader.line_num + 1, None, None, f"not UTF-8 text ({exc.reason})"
            ) from None
        except csv.Error as exc:
            raise InteractionFileError(name, reader.line_num, None, None, str(exc)) from None


def _field(path: str, line: int, values: list[str], column: int, names: Sequence[str]) -> str:
    value = values[column].strip()
    if not value:
        raise InteractionFileError(path, line, column + 1, names[column], "is empty")
    if len(value) > MAX_ID_LENGTH:
        raise InteractionFileError(
            path, line, column + 1, names[column], f"longer than {MAX_ID_LENGTH} characters"
        )
    return value


def _weight(path: str, line: int, values: list[str], names: Sequence[str]) -> float:
    if len(values) < 3 or not values[2].strip():
        return 1.0
    try:
        w = float(values[2])
    except ValueError:
        raise InteractionFileError(
            path, line, 3, names[2], f"{values[2].strip()[:40]!r} is not a number"
        ) from None
    if not math.isfinite(w) or w <= 0:
        raise InteractionFileError(path, line, 3, names[2], "must be a positive finite number")
    return w


def _triples(path: Path, names: Sequence[str]) -> tuple[list[str], list[str], list[float]]:
    a: list[str] = []
    b: list[str] = []
    w: list[float] = []
    name = str(path)
    for line, values in _rows(path):
        if len(values) not in (2, 3):
            raise InteractionFileError(
                name, line, None, None,
                f"{len(values)} fields, expected {','.join(names)} (weight optional)",
            )  # fmt: skip
        a.append(_field(name, line, values, 0, names))
        b.append(_field(name, line, values, 1, names))
        w.append(_weight(name, line, values, names))
    if not a:
        raise InteractionFileError(name, 1, None, None, "no rows: expected " + ",".join(names))
    return a, b, w


def from_triples(
    users: Sequence[str],
    items: Sequence[str],
    weights: Sequence[float],
    tag_triples: tuple[Sequence[str], Sequence[str], Sequence[float]] | None = None,
) -> Interactions:
    user_ids, u = np.unique(np.asarray(users, dtype=object).astype(str), return_inverse=True)
    item_ids, i = np.unique(np.asarray(items, dtype=object).astype(str), return_inverse=True)
    matrix = sp.csr_matrix(
        (np.asarray(weights, dtype=np.float32), (u, i)), shape=(len(user_ids), len(item_ids))
    )
    matrix.sum_duplicates()
    data = Interactions(matrix, list(user_ids), list(item_ids), duplicate_rows=len(u) - matrix.nnz)
    if tag_triples is not None:
        t_items, tags, t_weights = tag_triples
        index = {item: n for n, item in enumerate(data.item_ids)}
        keep = [n for n, item in enumerate(t_items) if item in index]
        tag_names, t = np.unique(
            np.asarray([tags[n] for n in keep], dtype=str), return_inverse=True
        )
        rows = np.asarray([index[t_items[n]] for n in keep], dtype=np.int64)
        data.item_tags = sp.csr_matrix(
            (np.asarray([t_weights[n] for n in keep], dtype=np.float32), (rows, t)),
            shape=(len(data.item_ids), len(tag_names)),
        )
        data.item_tags.sum_duplicates()
        data.tag_names = list(tag_names)
    return data


def read_interactions(path: Path, item_tags: Path | None = None) -> Interactions:
    """Read `user_id,item_id,weight` (and `item_id,tag,weight`); raises InteractionFileError."""
    users, items, weights = _triples(path, INTERACTION_COLUMNS)
    tags = _triples(item_tags, TAG_COLUMNS) if item_tags is not None else None
    return from_triples(users, items, weights, tags)
