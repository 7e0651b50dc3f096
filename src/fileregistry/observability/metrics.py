"""Prometheus metrics.

Two kinds:

* **Process counters and histograms** (scans, downloaded bytes, errors, HTTP requests) live in
  :data:`REGISTRY`, a module-level ``CollectorRegistry`` of our own (not prometheus_client's global
  one, so tests that build several apps in one process never clash on registration). They count
  since this process started, as Prometheus counters do; the other layers call ``record_*``.
* **Gauges computed at scrape time** from the app's database (files by state per source, age of
  the oldest ``new`` file, jobs by status), so they are right however many processes write the
  database and survive restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fileregistry.db import unit_of_work, utcnow
from fileregistry.jobs.store import FAILED, RUNNING, SUCCESSFUL
from fileregistry.observability import queries
from fileregistry.sftp.names import STATES

log = logging.getLogger("fileregistry.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)

SCAN_DURATION = Histogram(
    "fileregistry_sftp_scan_duration_seconds", "Duration of SFTP scans.", ["source", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
SCANS = Counter("fileregistry_sftp_scans", "SFTP scans by outcome (ok | error).", ["source", "outcome"],
                registry=REGISTRY)
DOWNLOADED_BYTES = Counter("fileregistry_sftp_downloaded_bytes", "Bytes downloaded into the mirror by scans.",
                           ["source"], registry=REGISTRY)
ERRORS = Counter(
    "fileregistry_errors",
    "Errors answered by the HTTP API, by kind: the AppError class (NotFound, UpstreamError, ...), "
    "'validation' (422 from request parsing) or 'internal' (unhandled, 500).",
    ["kind"], registry=REGISTRY,
)
HTTP_REQUESTS = Counter("fileregistry_http_requests", "HTTP requests by method, route template and status.",
                        ["method", "route", "status"], registry=REGISTRY)
HTTP_DURATION = Histogram(
    "fileregistry_http_request_duration_seconds", "HTTP request latency by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)

SCRAPE_DB_TIMEOUT = 10.0  # seconds; a scrape must not hang on a stuck database
JOB_STATUSES = (RUNNING, SUCCESSFUL, FAILED)


def record_scan(source: str, duration: float, bytes_downloaded: int, ok: bool) -> None:
    """One finished scan of ``source`` (stored source name, else connection key), ok or failed."""
    outcome = "ok" if ok else "error"
    SCAN_DURATION.labels(source, outcome).observe(max(duration, 0.0))
    SCANS.labels(source, outcome).inc()
    if bytes_downloaded > 0:
        DOWNLOADED_BYTES.labels(source).inc(bytes_downloaded)


def record_error(kind: str) -> None:
    ERRORS.labels(kind).inc()


def record_request(method: str, route: str, status: int, duration: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(duration)


class _Families:
    """A collector over a fixed list of metric families (for ``generate_latest``)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def snapshot_families(snap: queries.Snapshot, now: datetime) -> list[Metric]:
    """The scrape-time gauges. Every known source gets all four states and an age (0 when nothing
    waits), so an alert sees 0 rather than a missing series."""
    keys = sorted({k for k, _ in snap.files} | set(snap.source_names))
    label = {k: snap.source_names.get(k, k) for k in keys}
    files = GaugeMetricFamily("fileregistry_sftp_files", "Tracked SFTP files by source and state.",
                              labels=["source", "state"])
    oldest = GaugeMetricFamily(
        "fileregistry_sftp_oldest_new_file_age_seconds",
        "Seconds since the oldest file still in state 'new' was first seen, by source (0: none waiting).",
        labels=["source"],
    )
    for key in keys:
        for state in STATES:
            files.add_metric([label[key], state], snap.files.get((key, state), 0))
        first = snap.oldest_new.get(key)
        oldest.add_metric([label[key]], max((now - first).total_seconds(), 0.0) if first else 0.0)
    job_gauge = GaugeMetricFamily("fileregistry_jobs", "Jobs by kind and status.", labels=["kind", "status"])
    for kind in sorted({k for k, _ in snap.jobs}):
        statuses = sorted(set(JOB_STATUSES) | {s for k, s in snap.jobs if k == kind})
        for status in statuses:
            job_gauge.add_metric([kind, status], snap.jobs.get((kind, status), 0))
    return [files, oldest, job_gauge]


async def render(sessions: async_sessionmaker[AsyncSession]) -> bytes:
    """The /metrics body: process counters, then the gauges read from the database now.

    A database that does not answer costs the gauges, not the scrape: ``fileregistry_database_up``
    says 0 and the counters are still served.
    """
    families: list[Metric] = []
    up = GaugeMetricFamily("fileregistry_database_up", "1 if the database answered this scrape's queries.")
    try:
        async with asyncio.timeout(SCRAPE_DB_TIMEOUT):
            async with unit_of_work(sessions) as session:
                snap = await queries.snapshot(session)
        families = snapshot_families(snap, utcnow())
        up.add_metric([], 1)
    except Exception as exc:  # noqa: BLE001 - any failure: report it as a gauge, keep the counters
        log.warning("metrics: database query failed: %s", type(exc).__name__)
        up.add_metric([], 0)
    return generate_latest(REGISTRY) + generate_latest(_Families([up, *families]))  # type: ignore[arg-type]
