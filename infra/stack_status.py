"""``tickpipe status``: services (supervisord + health probes), topics (end offsets), consumer-group lag.

Printed as tables for people or as one JSON document (``--json``) for scripts and fault drills.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from infra.consumer_lag import GroupLag, group_lags
from infra.health import Health
from infra.settings import Settings
from infra.stack import Service
from infra.stack_control import StackController, StackRecord, record_path, services_table
from infra.supervision import ProcessInfo
from infra.topics import TopicInfo, describe_topics

EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_NOT_RUNNING = 0, 1, 3


@dataclass(frozen=True)
class StackStatus:
    """One look at the running stack."""

    services: list[tuple[Service, ProcessInfo, Health]]
    topics: list[TopicInfo] | None  # None while the broker is not healthy
    groups: list[GroupLag] | None

    @property
    def healthy(self) -> bool:
        """Every service runs and answers its health probe."""
        return all(info.state == "RUNNING" and health.ok for _, info, health in self.services)

    def as_json(self) -> dict[str, Any]:
        """The machine-readable form printed by ``tickpipe status --json``."""
        return {
            "healthy": self.healthy,
            "services": [
                {"name": s.name, "state": i.state, "pid": i.pid, "uptime_s": i.uptime_s, "healthy": h.ok,
                 "health": h.detail, "port": s.port, "url": s.url}
                for s, i, h in self.services
            ],
            "topics": None if self.topics is None else [
                {"name": t.name, "partitions": t.partitions, "end_offsets": list(t.end_offsets), "messages": t.messages}
                for t in self.topics
            ],
            "consumer_groups": None if self.groups is None else [asdict(g) for g in self.groups],
        }


def collect_status(controller: StackController) -> StackStatus:
    """Probe every recorded service; read topics and lag when the broker is healthy."""
    record = StackRecord.load(record_path(controller.paths))
    rows = controller.service_states()
    if not any(s.name == "broker" and h.ok for s, _, h in rows):
        return StackStatus(rows, None, None)
    kafka = controller.wired.kafka.model_copy(update={"bootstrap": record.bootstrap})
    return StackStatus(rows, describe_topics(kafka), group_lags(kafka.bootstrap))


def print_status(settings: Settings, console: Console, as_json: bool = False) -> int:
    """Print the status; return the exit code (0 healthy, 1 unhealthy, 3 not running)."""
    controller = StackController(settings, console)
    if not controller.supervisor.running() or not record_path(controller.paths).exists():
        if as_json:
            _print_json({"healthy": False, "running": False})
        else:
            console.print(f"no stack runs from {controller.paths.home} (start one with `tickpipe up`)")
        return EXIT_NOT_RUNNING
    status = collect_status(controller)
    if as_json:
        _print_json({"running": True, **status.as_json()})
        return EXIT_HEALTHY if status.healthy else EXIT_UNHEALTHY
    console.print(services_table(status.services, controller.paths))
    if status.topics is None or status.groups is None:
        console.print("broker not healthy: no topic or consumer-group figures")
    else:
        console.print(_topics_table(status.topics))
        console.print(_lag_table(status.groups))
    return EXIT_HEALTHY if status.healthy else EXIT_UNHEALTHY


def _print_json(document: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(document, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")


def _topics_table(topics: list[TopicInfo]) -> Table:
    table = Table("topic", "partitions", "end offsets", "messages", title="topics")
    for info in topics:
        table.add_row(info.name, str(info.partitions), ",".join(map(str, info.end_offsets)), str(info.messages))
    return table


def _lag_table(groups: list[GroupLag]) -> Table:
    table = Table("group", "state", "topic", "committed", "end", "lag", title="consumer groups")
    for row in groups:
        table.add_row(row.group, row.state, row.topic, str(row.committed), str(row.end), str(row.lag))
    if not groups:
        table.add_row("(no consumer group has committed offsets yet)", "", "", "", "", "")
    return table

