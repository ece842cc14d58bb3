"""The researcher's entry point: the archive as pandas DataFrames, connected from the settings.

    from sinks.research import Archive

    with Archive() as archive:                  # TICKPIPE_WAREHOUSE__URL / __DATABASE
        fills = archive.execution_fills(start="2026-12-06 08:00")

Every method reads the deduplicated archive (``v_<table>`` or the execution views), filtered by
instrument and by a half-open time range ``[start, end)`` on the column named in its docstring.
Times are anything :class:`pandas.Timestamp` reads (naive = UTC) or integer ns since the epoch.
Signals, orders, fills and the execution views take ``backtest_id``: ``""`` (the default) reads the live
pipeline's records, an id one ``tickpipe backtest`` run's, None every run's.
Prices and sizes come back as :class:`decimal.Decimal` (object columns), never floats, so sums and
differences stay exact; times as ``datetime64[ns, UTC]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal, Self

import pandas as pd
from clickhouse_connect.driver.client import Client

from infra.settings import WarehouseSettings, load_settings
from orderbook import Gap, SequencedBook
from sinks.client import connect

TimeLike = str | int | pd.Timestamp | None


class Archive:
    """Query the ClickHouse archive into DataFrames; one client, closed by :meth:`close` or ``with``."""

    def __init__(self, client: Client | None = None, warehouse: WarehouseSettings | None = None) -> None:
        """Use ``client``, else connect to ``warehouse`` (default: the settings' ``TICKPIPE_WAREHOUSE__*``)."""
        self.client = client or connect(warehouse or load_settings().warehouse)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self.client.close()

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run any SELECT (server-side ``{name:Type}`` parameters) and return its rows, times in UTC."""
        frame = self.client.query_df(sql, parameters=dict(parameters or {}))
        if frame.columns.empty:  # no rows: the local warehouse sends no header block, and callers select by name
            described = self.client.query(f"DESCRIBE ({sql})", parameters=dict(parameters or {}))
            return pd.DataFrame(columns=[row[0] for row in described.result_rows])
        for column in frame.select_dtypes(include=["datetime64"]).columns:
            frame[column] = frame[column].dt.tz_localize("UTC")  # the archive's DateTime64(9, 'UTC'), read naive
        return frame

    # --- market data -------------------------------------------------------------------------

    def trades(self, venue: str | None = None, symbol: str | None = None, start: TimeLike = None,
               end: TimeLike = None) -> pd.DataFrame:
        """Trades (``md.trades``) by venue time ``ts_event``."""
        return self._select("v_md_trades", "ts_event", venue, symbol, start, end, "ts_event, trade_id")

    def bbo(self, venue: str | None = None, symbol: str | None = None, start: TimeLike = None,
            end: TimeLike = None) -> pd.DataFrame:
        """Best bid and offer updates (``md.bbo``) by receive time ``ts_recv``."""
        return self._select("v_md_bbo", "ts_recv", venue, symbol, start, end, "ts_recv, update_id")

    def book_at(self, venue: str, symbol: str, at: TimeLike, depth: int = 10) -> pd.DataFrame:
        """The order book of one instrument as received by ``at``: ``side``, ``level`` (0 = best), ``price``, ``qty``.

        Rebuilt from the last snapshot received at or before ``at`` and the deltas after it, through the
        pipeline's own book (:class:`orderbook.SequencedBook`: the same update-id rule as the streams and
        the executor). Empty when no snapshot precedes ``at``; a gap after the snapshot stops the replay
        there (the book as it was before the gap).
        """
        at_ns = _ns(at)
        rows = self.client.query(
            "SELECT snapshot, first_update_id, last_update_id, bids, asks FROM v_md_book "
            "WHERE venue = {venue:String} AND symbol = {symbol:String} AND ts_recv <= fromUnixTimestamp64Nano({at:Int64}) "
            "AND ts_recv >= (SELECT max(ts_recv) FROM v_md_book WHERE venue = {venue:String} "
            "AND symbol = {symbol:String} AND snapshot AND ts_recv <= fromUnixTimestamp64Nano({at:Int64})) "
            "ORDER BY ts_recv, last_update_id",
            parameters={"venue": venue, "symbol": symbol, "at": at_ns},
        ).result_rows
        book = SequencedBook()
        for snapshot, first, last, bids, asks in rows:
            record = {"snapshot": snapshot, "first_update_id": first, "last_update_id": last,
                      "bids": [_level(level) for level in bids], "asks": [_level(level) for level in asks]}
            if isinstance(book.apply_record(record), Gap):
                break
        bids, asks = book.decimal_top(depth)
        return pd.DataFrame(
            [("bid", i, price, qty) for i, (price, qty) in enumerate(bids)]
            + [("ask", i, price, qty) for i, (price, qty) in enumerate(asks)],
            columns=["side", "level", "price", "qty"],
        )

    def bars(self, interval: Literal["1s", "1m"] = "1m", venue: str | None = None, symbol: str | None = None,
             start: TimeLike = None, end: TimeLike = None) -> pd.DataFrame:
        """The streams' bars (``bars.1s`` / ``bars.1m``) by bar ``start``, the latest version of each bar."""
        if interval not in ("1s", "1m"):
            raise ValueError(f"interval {interval!r}: the streams emit 1s and 1m bars (ohlcv_1h is a view: query it)")
        frame = self._select(f"v_bars_{interval}", "start", venue, symbol, start, end, "start, version DESC",
                             limit_by="venue, symbol, start")
        return frame.sort_values(["venue", "symbol", "start"], ignore_index=True) if len(frame) else frame

    def features(self, kind: Literal["book", "flow", "cross"] = "book", venue: str | None = None,
                 symbol: str | None = None, start: TimeLike = None, end: TimeLike = None) -> pd.DataFrame:
        """Feature records (``features.<kind>``) by emit time ``ts_emit`` (``cross``: symbol = ``BASE/QUOTE``)."""
        if kind not in ("book", "flow", "cross"):
            raise ValueError(f"kind {kind!r}: book, flow or cross")
        return self._select(f"v_features_{kind}", "ts_emit", venue, symbol, start, end, "ts_emit")

    # --- trading -----------------------------------------------------------------------------

    def signals(self, venue: str | None = None, symbol: str | None = None, start: TimeLike = None,
                end: TimeLike = None, backtest_id: str | None = "") -> pd.DataFrame:
        """Signals by emit time ``ts_emit``."""
        return self._select("v_signals", "ts_emit", venue, symbol, start, end, "ts_emit, signal_id",
                            backtest_id=backtest_id)

    def orders(self, venue: str | None = None, symbol: str | None = None, start: TimeLike = None,
               end: TimeLike = None, backtest_id: str | None = "") -> pd.DataFrame:
        """Order events (every state transition) by emit time ``ts_emit``."""
        return self._select("v_orders", "ts_emit", venue, symbol, start, end, "ts_emit, client_order_id, seq",
                            backtest_id=backtest_id)

    def fills(self, venue: str | None = None, symbol: str | None = None, start: TimeLike = None,
              end: TimeLike = None, backtest_id: str | None = "") -> pd.DataFrame:
        """Our fills, once per venue trade, with model and fee in quote (``fills_unique``), by venue time ``ts_event``."""
        return self._select("fills_unique", "ts_event", venue, symbol, start, end, "ts_event, trade_id",
                            backtest_id=backtest_id)

    # --- execution quality (docs/analysts.md, "Execution quality") -----------------------------

    def execution_orders(self, venue: str | None = None, symbol: str | None = None, start: TimeLike = None,
                         end: TimeLike = None, backtest_id: str | None = "") -> pd.DataFrame:
        """One row per order: arrival, slippage, fees, fill times, passive share (``execution_orders``), by ``created_at``."""
        return self._select("execution_orders", "created_at", venue, symbol, start, end, "created_at, client_order_id",
                            backtest_id=backtest_id)

    def execution_fills(self, venue: str | None = None, symbol: str | None = None, start: TimeLike = None,
                        end: TimeLike = None, backtest_id: str | None = "") -> pd.DataFrame:
        """One row per fill with its markouts at 1, 10 and 60 s (``execution_fills``), by venue time ``ts_event``."""
        return self._select("execution_fills", "ts_event", venue, symbol, start, end, "ts_event, trade_id",
                            backtest_id=backtest_id)

    def pnl(self, venue: str | None = None, symbol: str | None = None, start: TimeLike = None,
            end: TimeLike = None, backtest_id: str | None = "") -> pd.DataFrame:
        """Realised and marked-to-market PnL per model and instrument after each fill (``execution_pnl``), by ``ts_event``.

        The figures are cumulative from the first archived fill, whatever ``start`` says.
        """
        return self._select("execution_pnl", "ts_event", venue, symbol, start, end,
                            "model, venue, symbol, ts_event, trade_id", backtest_id=backtest_id)

    def _select(self, table: str, time_column: str, venue: str | None, symbol: str | None, start: TimeLike,
                end: TimeLike, order_by: str, limit_by: str | None = None,
                backtest_id: str | None = None) -> pd.DataFrame:
        where, parameters = [], {}
        if backtest_id is not None:
            where.append("backtest_id = {backtest_id:String}")
            parameters["backtest_id"] = backtest_id
        if venue is not None:
            where.append("venue = {venue:String}")
            parameters["venue"] = venue
        if symbol is not None:
            where.append("symbol = {symbol:String}")
            parameters["symbol"] = symbol
        if start is not None:
            where.append(f"{time_column} >= fromUnixTimestamp64Nano({{start:Int64}})")
            parameters["start"] = _ns(start)
        if end is not None:
            where.append(f"{time_column} < fromUnixTimestamp64Nano({{end:Int64}})")
            parameters["end"] = _ns(end)
        sql = f"SELECT * FROM {table}" + (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY {order_by}"
        if limit_by:
            sql += f" LIMIT 1 BY {limit_by}"
        return self.query(sql, parameters)


def _ns(value: str | int | pd.Timestamp) -> int:
    if isinstance(value, int):
        return value
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).value



def _level(level: Mapping[str, Decimal]) -> dict[str, str]:
    # the book takes the venue's plain decimal strings (a zero quantity is told from its text)
    return {"price": format(level["price"], "f"), "qty": format(level["qty"], "f")}
