"""CLI commands of the local stack: broker, topics, up, down, status, settings."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from infra.extras import require


def register(app: typer.Typer) -> None:
    """Add the stack commands to the root ``tickpipe`` app."""
    from infra.cli import settings_of

    topics_app = typer.Typer(help="Create and list Kafka topics.", no_args_is_help=True)
    app.add_typer(topics_app, name="topics")

    @topics_app.command("create")
    def topics_create(ctx: typer.Context) -> None:
        """Create every tickpipe topic (idempotent; partitions and retention from settings)."""
        from infra.topics import create_topics

        created = create_topics(settings_of(ctx).kafka)
        typer.echo(f"created {len(created)} topic(s): {', '.join(created) or '-'}")

    @topics_app.command("list")
    def topics_list(ctx: typer.Context) -> None:
        """List topics with partition counts and end offsets."""
        from infra.topics import describe_topics

        table = Table("topic", "partitions", "end offsets", "messages")
        for info in describe_topics(settings_of(ctx).kafka):
            table.add_row(info.name, str(info.partitions), ",".join(map(str, info.end_offsets)), str(info.messages))
        Console().print(table)

    @topics_app.command("tail")
    def topics_tail(
        ctx: typer.Context,
        topic: Annotated[str, typer.Argument(help="topic to read, e.g. md.trades")],
        from_beginning: Annotated[bool, typer.Option("--from-beginning", help="start at each partition's first record")] = False,
        last: Annotated[int, typer.Option("--last", "-n", min=0, help="else start this many records before each partition's end")] = 10,
        follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new records until Ctrl-C")] = False,
        key: Annotated[str | None, typer.Option("--key", help='only records with this key, e.g. "binance:BTCUSDT"')] = None,
    ) -> None:
        """Print a topic's records as JSON lines, Avro decoded (no consumer group, nothing committed)."""
        import threading

        from infra.topic_tail import tail

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())

        def emit(line: str) -> None:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

        try:
            tail(settings_of(ctx).kafka.bootstrap, topic, emit, from_beginning=from_beginning, last=last,
                 follow=follow, key=key, stop=stop)
        except KeyboardInterrupt:
            pass
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except BrokenPipeError:  # `| head`
            sys.stderr.close()

    @app.command("broker")
    def broker(ctx: typer.Context) -> None:
        """Run the local Apache Kafka node (KRaft broker + controller) in the foreground, as this process.

        The storage under ``broker.data_dir`` is formatted on first start and kept; topics are created
        by ``tickpipe up`` / ``tickpipe topics create`` once the broker answers.
        """
        from infra.broker import BrokerError, KafkaNode, exec_broker

        settings = settings_of(ctx)
        try:
            exec_broker(KafkaNode.from_settings(settings.broker))
        except BrokerError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    @app.command("up")
    def up(ctx: typer.Context) -> None:
        """Start the local stack under supervisord, in order; return when every service is healthy."""
        require("local", "up")
        from infra.stack import StackConfigError
        from infra.stack_control import StackController, StackError, print_up_summary

        console = Console()
        controller = StackController(settings_of(ctx), console)
        try:
            record = controller.up()
        except (StackError, StackConfigError) as exc:
            console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        print_up_summary(console, controller, record)

    @app.command("down")
    def down(ctx: typer.Context) -> None:
        """Stop every service of the local stack and supervisord; verify by pid that none is left."""
        require("local", "down")
        from infra.stack_control import StackController, StackError

        console = Console()
        try:
            StackController(settings_of(ctx), console).down()
        except StackError as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None

    @app.command("status")
    def status(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="one JSON document instead of tables"),
    ) -> None:
        """Show each service's state, pid, uptime and health, topic end offsets and consumer-group lag.

        Exits 0 when every service runs and is healthy, 1 otherwise, 3 when no stack runs.
        """
        require("local", "status")
        from infra.stack_status import print_status

        raise typer.Exit(print_status(settings_of(ctx), Console(), as_json))

    @app.command("settings")
    def settings_cmd(
        markdown: bool = typer.Option(False, "--markdown", help="print the README's markdown table"),
    ) -> None:
        """List every setting: environment variable, default and description."""
        from infra.settings_table import markdown_table, setting_rows

        if markdown:
            typer.echo(markdown_table())
            return
        table = Table("environment variable", "default", "description")
        for row in setting_rows():
            table.add_row(row.env, row.default, row.description)
        Console().print(table)

    @app.command("bench")
    def bench(
        only: Annotated[
            list[str] | None, typer.Option("--only", help="run only this bench script (stem; repeatable)")
        ] = None,
        timeout_s: float = typer.Option(1800.0, "--timeout", help="stop a script running longer than this (s)"),
    ) -> None:
        """Run every bench/*.py in turn (figures go to the terminal; record them in docs/benchmarks.md)."""
        from pathlib import Path

        from infra.bench_runner import bench_scripts, run_benchmarks, summary_table

        console = Console()
        folder = Path.cwd() / "bench"
        try:
            scripts = bench_scripts(folder, only)
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        if not scripts:
            console.print(f"no benchmark scripts in {folder}")
            raise typer.Exit(1)
        results = run_benchmarks(scripts, console, timeout_s)
        console.print(summary_table(results))
        raise typer.Exit(0 if all(r.returncode == 0 for r in results) else 1)

    @app.command("top")
    def top(
        ctx: typer.Context,
        interval_s: float = typer.Option(2.0, "--interval", min=0.2, help="seconds between refreshes"),
        once: bool = typer.Option(False, "--once", help="print one frame and exit (no terminal needed)"),
    ) -> None:
        """Live view: messages/s per topic, consumer lag, feed health, latest signals, open orders, positions and PnL."""
        from infra.top import Sampler, run_top, stack_endpoints

        settings = settings_of(ctx)
        run_top(Sampler(stack_endpoints(settings), settings.stack.probe_timeout_s), Console(), interval_s, once)
