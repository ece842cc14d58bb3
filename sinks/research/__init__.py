"""Research reports read from the ClickHouse archive (matplotlib, Agg backend, PNG out).

Lives inside ``sinks/`` because it reads only what the sink archives and the views it creates
(the top-level layout has no research folder). ``tickpipe report spread|latency`` runs these.
"""
