"""Garbage-collector tuning for API processes.

Ingest allocates many short-lived objects per event; with CPython's default gen0 threshold
(700) the collector ran so often that py-spy charged ~30% of a worker's samples under batch
load to whatever allocation triggered it (docs/performance.md). Freezing the startup heap
(never garbage) keeps full collections cheap, a larger gen0 makes young collections rarer.
Process-wide, so opt-out: MYSETLIST_GC_GEN0_THRESHOLD=0 leaves Python's defaults.
"""

from __future__ import annotations

import gc


def tune_gc(gen0_threshold: int) -> None:
    if gen0_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)
