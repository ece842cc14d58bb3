"""Prometheus metrics of the warehouse, in a registry of its own (one per server instance)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class WarehouseMetrics:
    """Counters a reader of ``/metrics`` needs: load by kind, rows in/out, errors by code, latency."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "warehouse_requests", "Statements served, by kind (select, insert, other) and HTTP status",
            ["kind", "status"], registry=r,
        )
        self.inserted_rows = Counter("warehouse_inserted_rows", "Rows written by INSERT statements", registry=r)
        self.read_rows = Counter("warehouse_read_rows", "Rows read by statements", registry=r)
        self.body_bytes = Counter(
            "warehouse_request_body_bytes", "Request body bytes received, as sent (compressed)", registry=r
        )
        self.errors = Counter("warehouse_errors", "Refused statements, by ClickHouse error code", ["code"], registry=r)
        self.latency = Histogram(
            "warehouse_request_seconds", "Time from request to response, by kind", ["kind"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.in_flight = Gauge("warehouse_in_flight", "Statements running now", registry=r)
        self.running = 0

    def start(self) -> None:
        """Count a statement as running."""
        self.running += 1
        self.in_flight.set(self.running)

    def finish(self) -> None:
        """Count a running statement as done."""
        self.running -= 1
        self.in_flight.set(self.running)
