"""``tickpipe top``: a live terminal view of the running pipeline.

Each refresh samples the broker (end offsets -> messages/s per topic, consumer-group lag), the
feed's and executor's ``/health`` (connections, books, trading state, positions) and the warehouse
(latest signals, open orders, PnL from fills, the hot path's latency per hop). A source that does not answer shows why in its
panel; the view keeps running.
"""

from __future__ import annotations

import contextlib
import select
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from rich.console import Console, Group
from rich.layout import Layout
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from infra.consumer_lag import group_lags
from infra.settings import KafkaSettings, Settings
from infra.stack_control import StackController, StackRecord, record_path
from infra.topics import describe_topics
from schemas.order_status import TERMINAL

LATEST_SIGNALS_SQL = """
SELECT ts_emit, symbol, side, round(strength, 3) AS strength, model, signal_id
FROM signals ORDER BY ts_emit DESC LIMIT 6 FORMAT JSONEachRow
"""

OPEN_ORDERS_SQL = f"""
SELECT client_order_id, any(symbol) AS symbol, any(side) AS side, argMax(status, seq) AS status,
       argMax(price, seq) AS price, any(qty) AS qty, argMax(filled_qty, seq) AS filled
FROM orders GROUP BY client_order_id
HAVING status NOT IN ({", ".join(sorted(f"'{s.value}'" for s in TERMINAL))})
ORDER BY client_order_id DESC LIMIT 8 FORMAT JSONEachRow
"""

# Realized cash flow of the fills plus the open position marked at the last trade price.
PNL_SQL = """
SELECT f.symbol AS symbol, f.position AS position, f.cash AS cash, t.last AS last,
       f.cash + f.position * t.last AS pnl, f.fills AS fills
FROM (
    SELECT symbol, sum(if(side = 'buy', qty, -qty)) AS position,
           sum(if(side = 'sell', price * qty, -price * qty)) - sum(fee) AS cash, count() AS fills
    FROM fills GROUP BY symbol
) AS f
LEFT JOIN (SELECT symbol, argMax(price, ts_event) AS last FROM md_trades GROUP BY symbol) AS t USING symbol
ORDER BY symbol FORMAT JSONEachRow
"""

# The hot path of the last 5 minutes, hop by hop (first order of each signal; see the order_latency view).
HOPS = (
    ("venue -> feed", "venue_to_feed_ns"), ("feed -> Kafka ack", "feed_to_md_ack_ns"),
    ("Kafka -> streams", "md_ack_to_streams_ns"), ("streams -> signal", "streams_to_signal_ns"),
    ("signal -> Kafka ack", "signal_to_signal_ack_ns"), ("Kafka -> executor", "signal_ack_to_executor_ns"),
    ("executor -> order sent", "executor_to_order_sent_ns"), ("order -> venue answer", "order_round_trip_ns"),
    ("tick -> signal", "tick_to_signal_ns"), ("tick -> order sent", "tick_to_order_sent_ns"),
)
HOT_PATH_WINDOW_S = 300


def hot_path_sql(window_s: int) -> str:
    """p50 and p99 of every hop over the signals' first orders sent in the last ``window_s`` seconds."""
    quantiles = ", ".join(f"quantiles(0.5, 0.99)({column}) AS {column}" for _, column in HOPS)
    return (f"SELECT count() AS orders, {quantiles} FROM order_latency "
            f"WHERE first_order AND ts_sent >= now() - INTERVAL {int(window_s)} SECOND FORMAT JSONEachRow")


@dataclass(frozen=True)
class Endpoints:
    """Where ``top`` looks."""

    kafka: KafkaSettings
    warehouse_url: str
    database: str
    feed_health: str | None
    executor_health: str | None


def stack_endpoints(settings: Settings) -> Endpoints:
    """Where to look: the running stack's record (``tickpipe up``), else the settings as ``up`` would wire them."""
    controller = StackController(settings)
    path = record_path(controller.paths)
    record = StackRecord.load(path) if path.exists() else controller.plan()
    health = {s.name: s.health_url for s in record.services}
    return Endpoints(
        kafka=controller.wired.kafka.model_copy(update={"bootstrap": record.bootstrap}),
        warehouse_url=record.warehouse_url,
        database=settings.warehouse.database,
        feed_health=health.get("feed"),
        executor_health=health.get("executor"),
    )


def topic_rates(before: dict[str, int], after: dict[str, int], seconds: float) -> dict[str, float]:
    """Messages per second per topic between two samples of total end offsets."""
    if seconds <= 0:
        return {name: 0.0 for name in after}
    return {name: max(0, total - before.get(name, total)) / seconds for name, total in after.items()}


@dataclass
class Sampler:
    """Keeps the previous offsets sample so that each refresh yields rates."""

    endpoints: Endpoints
    timeout_s: float = 2.0
    _last: tuple[float, dict[str, int]] | None = field(default=None, init=False)

    def topics(self) -> list[tuple[str, int, float]]:
        """(topic, messages, messages/s) for every topic."""
        now = time.monotonic()
        totals = {t.name: t.messages for t in describe_topics(self.endpoints.kafka, self.timeout_s)}
        before_t, before = self._last or (now, totals)
        self._last = (now, totals)
        rates = topic_rates(before, totals, now - before_t)
        return [(name, totals[name], rates[name]) for name in sorted(totals)]

    def health(self, url: str | None) -> dict[str, Any]:
        """The JSON a service's ``/health`` returns (also when unhealthy, 503)."""
        if url is None:
            raise LookupError("not part of the stack")
        return requests.get(url, timeout=self.timeout_s).json()

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows of a warehouse query in JSONEachRow."""
        response = requests.post(
            self.endpoints.warehouse_url, params={"database": self.endpoints.database},
            data=sql.encode(), timeout=self.timeout_s,
        )
        if response.status_code != 200:
            raise RuntimeError(response.text.strip().splitlines()[0][:160] if response.text else response.status_code)
        return [orjson.loads(line) for line in response.content.splitlines() if line.strip()]


def _guard(title: str, build: Callable[[], Any]) -> Panel:
    try:
        body = build()
    except Exception as exc:  # noqa: BLE001 (one source failing must not stop the view)
        body = Text(f"unavailable: {type(exc).__name__}: {str(exc)[:200]}", style="yellow")
    return Panel(body, title=title, title_align="left")


def _table(*columns: str, rows: list[tuple[Any, ...]], empty: str) -> Table | Text:
    if not rows:
        return Text(empty, style="dim")
    table = Table(*columns, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*(str(c) for c in row))
    return table


def _topics_view(sampler: Sampler) -> Table | Text:
    return _table("topic", "messages", "msg/s",
                  rows=[(n, m, f"{r:,.1f}") for n, m, r in sampler.topics()], empty="no topics")


def _lag_view(sampler: Sampler) -> Table | Text:
    rows = [(g.group, g.topic, g.lag) for g in group_lags(sampler.endpoints.kafka.bootstrap, sampler.timeout_s)]
    return _table("group", "topic", "lag", rows=rows, empty="no consumer group has committed offsets yet")


def _feed_view(sampler: Sampler) -> Group:
    health = sampler.health(sampler.endpoints.feed_health)
    state = Text("healthy" if health.get("ok") else "UNHEALTHY", style="green" if health.get("ok") else "red")
    connections = Text(f"connections open: {', '.join(map(str, health.get('connections', []))) or 'none'}")
    symbols = health.get("symbols", {})
    rows = [(s, d.get("book", "?") if isinstance(d, dict) else d) for s, d in sorted(symbols.items())]
    return Group(state, connections, _table("symbol", "book", rows=rows, empty="no symbols"))


def _executor_view(sampler: Sampler) -> Group:
    health = sampler.health(sampler.endpoints.executor_health)
    state = health.get("trading_state", "starting" if not health.get("started") else "?")
    head = Text(f"trading: {state}   open orders: {health.get('open_orders', '-')}   "
                f"in flight: {health.get('inflight', '-')}")
    positions = health.get("positions", {})
    try:
        pnl = {r["symbol"]: r for r in sampler.query(PNL_SQL)}
        failure = None
    except Exception as exc:  # noqa: BLE001 (PnL is optional next to the executor's own figures, but say so)
        pnl, failure = {}, f"PnL query failed: {type(exc).__name__}: {str(exc)[:160]}"
    rows = [
        (s, q, pnl.get(s, {}).get("last", "-"), pnl.get(s, {}).get("pnl", "-"))
        for s, q in sorted({**{s: "-" for s in pnl}, **positions}.items())
    ]
    table = _table("symbol", "position", "last", "PnL (quote)", rows=rows, empty=failure or "no positions")
    if failure is not None and rows:
        return Group(head, table, Text(failure, style="yellow"))
    return Group(head, table)


def _signals_view(sampler: Sampler) -> Table | Text:
    rows = [(r["ts_emit"][11:23], r["symbol"], r["side"], r["strength"], r["model"]) for r in sampler.query(LATEST_SIGNALS_SQL)]
    return _table("time", "symbol", "side", "strength", "model", rows=rows, empty="no signals yet")


def _orders_view(sampler: Sampler) -> Table | Text:
    rows = [(r["client_order_id"][-12:], r["symbol"], r["side"], r["status"], r["price"], r["qty"], r["filled"])
            for r in sampler.query(OPEN_ORDERS_SQL)]
    return _table("order", "symbol", "side", "status", "price", "qty", "filled", rows=rows, empty="no open orders")


def hot_path_view(sampler: Sampler, window_s: int = HOT_PATH_WINDOW_S) -> Group | Text:
    """Where each millisecond from tick to order went (the ``order_latency`` view), hop by hop."""
    rows = sampler.query(hot_path_sql(window_s))
    if not rows or not int(rows[0]["orders"]):
        return Text(f"no order in the last {window_s} s", style="dim")
    row = rows[0]
    table = _table("hop", "p50 ms", "p99 ms", rows=[
        (name, *(f"{float(q) / 1e6:.2f}" for q in row[column])) for name, column in HOPS
    ], empty="")
    return Group(Text(f"{row['orders']} orders (first of each signal), last {window_s} s"), table)


def render(sampler: Sampler) -> Layout:
    """One frame of the view."""
    layout = Layout()
    layout.split_column(Layout(name="head", size=1), Layout(name="body"))
    layout["head"].update(Text(
        f"tickpipe top  {time.strftime('%H:%M:%S')}  broker {sampler.endpoints.kafka.bootstrap}  "
        f"warehouse {sampler.endpoints.warehouse_url}   (q or Ctrl-C quits)", style="bold",
    ))
    layout["body"].split_row(Layout(name="left"), Layout(name="right"))
    layout["left"].split_column(
        Layout(_guard("topics", lambda: _topics_view(sampler)), ratio=3),
        Layout(_guard("consumer lag", lambda: _lag_view(sampler)), ratio=2),
        Layout(_guard("hot path (tick to order)", lambda: hot_path_view(sampler)), ratio=3),
    )
    layout["right"].split_column(
        Layout(_guard("feed health", lambda: _feed_view(sampler)), ratio=2),
        Layout(_guard("latest signals", lambda: _signals_view(sampler)), ratio=2),
        Layout(_guard("open orders", lambda: _orders_view(sampler)), ratio=2),
        Layout(_guard("executor: positions and PnL", lambda: _executor_view(sampler)), ratio=2),
    )
    return layout


@contextlib.contextmanager
def _keys() -> Iterator[Callable[[float], str]]:
    """Yield ``wait(seconds) -> key pressed or ''``; without a terminal it just sleeps."""
    if not sys.stdin.isatty():
        yield lambda seconds: (time.sleep(seconds), "")[1]
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        def wait(seconds: float) -> str:
            ready, _, _ = select.select([sys.stdin], [], [], seconds)
            return sys.stdin.read(1) if ready else ""

        yield wait
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run_top(sampler: Sampler, console: Console, interval_s: float, once: bool) -> None:
    """Refresh in place every ``interval_s`` until q or Ctrl-C (``once``: print one frame and return)."""
    if once:
        sampler.topics()  # rates need two samples
        time.sleep(min(interval_s, 1.0))
        console.print(render(sampler), height=console.height if console.is_terminal else 48)
        return
    with _keys() as wait, Live(render(sampler), console=console, screen=True, auto_refresh=False) as live:
        try:
            while wait(interval_s).lower() != "q":
                live.update(render(sampler), refresh=True)
        except KeyboardInterrupt:
            return
