"""CLI commands of the local stack: broker, topics, up, down, status, settings."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


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

    @app.command("broker")
    def broker(
        ctx: typer.Context,
        create_topics_too: bool = typer.Option(
            False, "--create-topics", help="create every tickpipe topic as soon as the broker answers"
        ),
    ) -> None:
        """Run the local tansu broker in the foreground; ready once a metadata request succeeds."""
        from infra.broker import BrokerError, start_broker
        from infra.logs import configure_logging
        from infra.topics import create_topics

        settings = settings_of(ctx)
        configure_logging("broker", settings.log_level)
        host, port = settings.broker.host, settings.broker.port
        try:
            proc = start_broker(
                host, port, timeout_s=settings.broker.start_timeout_s, die_with_parent=True, inherit_output=True
            )
        except BrokerError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
        if create_topics_too:
            # tansu keeps topics in memory: a restarted broker gets them back before clients return.
            created = create_topics(settings.kafka.model_copy(update={"bootstrap": f"{host}:{port}"}))
            typer.echo(f"created {len(created)} topic(s)")
        typer.echo(f"broker ready on {host}:{port} (pid {proc.pid})", err=False)
        sys.stdout.flush()
        sys.exit(proc.wait())

    @app.command("up")
    def up(ctx: typer.Context) -> None:
        """Start the local stack under supervisord, in order; return when every service is healthy."""
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
