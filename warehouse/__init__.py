"""The local warehouse: one process owns the chdb store and serves the ClickHouse HTTP interface.

``protocol`` parses requests (pure), ``engine`` runs statements on chdb, ``server`` is the aiohttp
layer, ``process`` starts and controls a warehouse process (tests, the local stack).
"""
