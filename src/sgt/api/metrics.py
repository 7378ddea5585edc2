"""The numbers `/metrics` serves, and their Prometheus text encoding (exposition format 0.0.4).

Request counters and duration histograms live in this process's memory; the rest is read from
the database at each scrape (`sgt.services.stats.read_gauges`). Label values come from a fixed
set (route templates, one bucket for unmatched paths, status codes), so a client cannot add a
series or a line; every value is escaped anyway. Must not import sgt.training.

Written here rather than taken from prometheus_client: the whole encoder is the few functions
below, each app (and each test) owns its own registry instead of a process-global one, and no
dependency is added (docs/metrics.md).
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sgt.services.stats import ServiceGauges
from sgt.services.trainers import TrainerCensus

UNMATCHED_ROUTE = "unmatched"
# Seconds: from a cached small run (~0.2 ms) to a large upload or a scrypt-bound burst.
DURATION_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sample:
    """One line of a metric family: its name suffix (`_bucket`, `_sum`, ...), labels, value."""

    suffix: str
    labels: Labels
    value: float


@dataclass(frozen=True)
class MetricFamily:
    """A HELP line, a TYPE line and the samples under them."""

    name: str
    kind: str  # counter, gauge, histogram
    help: str
    samples: Sequence[Sample]


def escape_label_value(value: str) -> str:
    """A label value as the text format requires: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _format_labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{name}="{escape_label_value(value)}"' for name, value in labels)
    return "{" + inner + "}"


def encode_text(families: Iterable[MetricFamily]) -> str:
    """The Prometheus text exposition of `families`, one HELP and TYPE line per family."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for sample in family.samples:
            name = family.name + sample.suffix
            lines.append(f"{name}{_format_labels(sample.labels)} {_format_value(sample.value)}")
    return "\n".join(lines) + "\n"


@dataclass
class _Histogram:
    bucket_counts: list[int]
    count: int = 0
    total: float = 0.0


@dataclass
class RequestMetrics:
    """Requests answered by this process: a counter by (route, status) and a duration histogram
    by route. Thread-safe; bounded by the number of routes times the statuses they answer."""

    buckets: tuple[float, ...] = DURATION_BUCKETS_SECONDS
    _answered: dict[tuple[str, int], int] = field(default_factory=dict)
    _durations: dict[str, _Histogram] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, *, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (route, status)
            self._answered[key] = self._answered.get(key, 0) + 1
            histogram = self._durations.get(route)
            if histogram is None:
                histogram = self._durations[route] = _Histogram([0] * len(self.buckets))
            index = bisect.bisect_left(self.buckets, seconds)
            if index < len(self.buckets):
                histogram.bucket_counts[index] += 1
            histogram.count += 1
            histogram.total += seconds

    def families(self) -> list[MetricFamily]:
        with self._lock:
            answered = sorted(self._answered.items())
            durations = sorted(
                (route, list(h.bucket_counts), h.count, h.total)
                for route, h in self._durations.items()
            )
        totals = [
            Sample("", (("route", route), ("status", str(status))), count)
            for (route, status), count in answered
        ]
        histogram_samples: list[Sample] = []
        for route, counts, count, total in durations:
            cumulative = 0
            for bound, in_bucket in zip(self.buckets, counts, strict=True):
                cumulative += in_bucket
                labels = (("route", route), ("le", _format_value(bound)))
                histogram_samples.append(Sample("_bucket", labels, cumulative))
            histogram_samples.append(Sample("_bucket", (("route", route), ("le", "+Inf")), count))
            histogram_samples.append(Sample("_sum", (("route", route),), total))
            histogram_samples.append(Sample("_count", (("route", route),), count))
        return [
            MetricFamily(
                "sgt_http_requests_total",
                "counter",
                "Requests answered by this process, by route template and status.",
                totals,
            ),
            MetricFamily(
                "sgt_http_request_duration_seconds",
                "histogram",
                "Time from a request's arrival until its answer was sent, by route template.",
                histogram_samples,
            ),
        ]


def _single(name: str, kind: str, help_text: str, value: float) -> MetricFamily:
    return MetricFamily(name, kind, help_text, [Sample("", (), value)])


def process_families(
    *, auth_failures: int, auth_throttled: int, cache_entries: int
) -> list[MetricFamily]:
    """What this process counted itself, beside the request metrics."""
    return [
        _single(
            "sgt_auth_failures_total",
            "counter",
            "Credential checks that found a wrong key or an unknown secret_id (this process).",
            auth_failures,
        ),
        _single(
            "sgt_auth_throttled_total",
            "counter",
            "Requests refused without a key check: too many failures from their address lately.",
            auth_throttled,
        ),
        _single(
            "sgt_model_cache_entries",
            "gauge",
            "Models loaded in this process.",
            cache_entries,
        ),
    ]


def database_families(gauges: ServiceGauges | None) -> list[MetricFamily]:
    """The database-wide gauges read for this scrape; None: the database did not answer."""
    families = [
        _single(
            "sgt_database_up",
            "gauge",
            "1 when the database answered this scrape's reads, else 0.",
            0 if gauges is None else 1,
        )
    ]
    if gauges is None:
        return families
    by_state = [
        Sample("", (("state", str(state)),), count)
        for state, count in sorted(gauges.models_by_state.items())
    ]
    return [
        *families,
        MetricFamily("sgt_models", "gauge", "Models, by training state.", by_state),
        _single(
            "sgt_training_queue_depth",
            "gauge",
            "Models waiting for a trainer (state queued).",
            gauges.queue_depth,
        ),
        _single(
            "sgt_samples_stored",
            "gauge",
            "Training rows stored, over every model.",
            gauges.samples_stored,
        ),
    ]


def trainer_families(census: TrainerCensus | None) -> list[MetricFamily]:
    """Trainers beaten within SGT_TRAINER_STALE_SECONDS and each one's restarts by its
    supervisor; none when the database did not answer."""
    if census is None:
        return []
    restarts = [
        Sample("", (("trainer", trainer.name),), trainer.restarts) for trainer in census.alive
    ]
    return [
        _single(
            "sgt_trainers_alive",
            "gauge",
            "Trainers that beat within SGT_TRAINER_STALE_SECONDS.",
            len(census.alive),
        ),
        MetricFamily(
            "sgt_trainer_restarts",
            "gauge",
            "Restarts of each live trainer by its supervisor (sgt serve).",
            restarts,
        ),
    ]
