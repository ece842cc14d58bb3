"""``tickpipe status``: services (supervisord + health probes), topics (end offsets), consumer-group lag."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from infra.consumer_lag import group_lags
from infra.settings import KafkaSettings, Settings
from infra.stack_control import StackController, record_path, services_table
from infra.topics import describe_topics

EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_NOT_RUNNING = 0, 1, 3


def print_status(settings: Settings, console: Console) -> int:
    """Print the three status tables; return the exit code (0 healthy, 1 unhealthy, 3 not running)."""
    controller = StackController(settings, console)
    if not controller.supervisor.running() or not record_path(controller.paths).exists():
        console.print(f"no stack runs from {controller.paths.home} (start one with `tickpipe up`)")
        return EXIT_NOT_RUNNING
    rows = controller.service_states()
    console.print(services_table(rows, controller.paths))
    broker_ok = any(s.name == "broker" and h.ok for s, _, h in rows)
    if broker_ok:
        kafka: KafkaSettings = controller.wired.kafka
        console.print(_topics_table(kafka))
        console.print(_lag_table(kafka.bootstrap))
    else:
        console.print("broker not healthy: no topic or consumer-group figures")
    healthy = all(info.state == "RUNNING" and health.ok for _, info, health in rows)
    return EXIT_HEALTHY if healthy else EXIT_UNHEALTHY


def _topics_table(kafka: KafkaSettings) -> Table:
    table = Table("topic", "partitions", "end offsets", "messages", title="topics")
    for info in describe_topics(kafka):
        table.add_row(info.name, str(info.partitions), ",".join(map(str, info.end_offsets)), str(info.messages))
    return table


def _lag_table(bootstrap: str) -> Table:
    table = Table("group", "state", "topic", "committed", "end", "lag", title="consumer groups")
    rows = group_lags(bootstrap)
    for row in rows:
        table.add_row(row.group, row.state, row.topic, str(row.committed), str(row.end), str(row.lag))
    if not rows:
        table.add_row("(no consumer group has committed offsets yet)", "", "", "", "", "")
    return table
