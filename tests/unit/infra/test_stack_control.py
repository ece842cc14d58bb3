"""Pure helpers of `tickpipe up`/`status`: the saved stack record, log tails, example commands."""

from __future__ import annotations

from pathlib import Path

from infra.settings import Settings
from infra.stack import build_services
from infra.stack_control import StackRecord, command_exists, example_commands, log_tail


def test_stack_record_round_trips_through_its_json_file(tmp_path: Path) -> None:
    services = build_services(Settings(), "/venv/bin/tickpipe", lambda _: True)
    record = StackRecord(services, "127.0.0.1:19092", "http://127.0.0.1:18123")

    record.save(tmp_path / "stack.json")

    assert StackRecord.load(tmp_path / "stack.json") == record


def test_log_tail_returns_the_last_lines_and_nothing_for_a_missing_log(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))

    assert log_tail(log, 3) == "line 97\nline 98\nline 99"
    assert log_tail(tmp_path / "absent.log") == ""


def test_example_commands_offer_three_sql_queries_only_with_a_warehouse() -> None:
    services = build_services(Settings(), "tickpipe", lambda _: True)
    with_wh = StackRecord(services, "b", "http://127.0.0.1:8123")
    without = StackRecord(tuple(s for s in services if s.name == "broker"), "b", "-")

    assert sum(c.startswith("tickpipe sql") for c in example_commands(with_wh, "tickpipe")) == 3
    assert not any("sql" in c or "curl" in c for c in example_commands(without, "tickpipe"))
    assert example_commands(without, "tickpipe")[-1] == "tickpipe down"


def test_command_exists_walks_groups_and_treats_the_rest_as_arguments() -> None:
    assert command_exists(("topics", "create"))
    assert command_exists(("broker", "anything-after-a-plain-command-is-an-argument"))
    assert not command_exists(("topics", "delete-everything"))
    assert not command_exists(("no-such-command",))
