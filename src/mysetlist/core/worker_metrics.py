"""The job worker's Prometheus metrics, wherever it runs.

- Under `mysetlist serve`/`demo` the worker is a child process (core/worker_supervisor.py)
  writing prometheus-client multiprocess files into a directory under the data dir; the
  API's `/metrics` adds them to its own (`with_worker_metrics`), so one scrape sees both.
- A standalone `mysetlist worker --metrics-port PORT` (MYSETLIST_WORKER_METRICS_PORT)
  serves its own `/metrics` (`serve_worker_metrics`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

_worker_dir: Path | None = None


def merge_worker_metrics_from(path: Path | None) -> None:
    """This (API) process's `/metrics` also shows the worker child's files in `path`."""
    global _worker_dir
    _worker_dir = path


def _registry_of(path: Path) -> CollectorRegistry:
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
    return registry


def _key(sample: Sample) -> tuple[str, tuple[tuple[str, str], ...]]:
    return sample.name, tuple(sorted(sample.labels.items()))


def merged(own: Iterable[Metric], other: Iterable[Metric]) -> list[Metric]:
    """One family per name: samples of both, a counter's or histogram's sample present in
    both summed (the same series counted in two processes); a gauge keeps this process's."""
    families: dict[str, Metric] = {}
    for family in own:
        copy = Metric(family.name, family.documentation, family.type, family.unit)
        copy.samples = list(family.samples)
        families[family.name] = copy
    for family in other:
        mine = families.get(family.name)
        if mine is None:
            families[family.name] = family
            continue
        index = {_key(sample): i for i, sample in enumerate(mine.samples)}
        for sample in family.samples:
            at = index.get(_key(sample))
            if at is None:
                mine.samples.append(sample)
            elif family.type != "gauge":
                old = mine.samples[at]
                mine.samples[at] = old._replace(value=old.value + sample.value)
    return list(families.values())


class _Fixed:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def with_worker_metrics(own_registry: Any = REGISTRY) -> bytes:
    """This process's metrics (`own_registry`) in the text format, with the worker child's
    merged in when there is a worker child."""
    if _worker_dir is None or not _worker_dir.is_dir():
        return generate_latest(own_registry)
    families = merged(own_registry.collect(), _registry_of(_worker_dir).collect())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))  # type: ignore[arg-type]
    return generate_latest(registry)


def serve_worker_metrics(port: int, host: str) -> None:
    """`/metrics` of this worker process on `host:port`, in a thread (prometheus-client's
    own server); aggregated over PROMETHEUS_MULTIPROC_DIR when that is set."""
    from prometheus_client import start_http_server

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    registry = _registry_of(Path(directory)) if directory else REGISTRY
    start_http_server(port, addr=host, registry=registry)
