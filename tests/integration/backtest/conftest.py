"""The backtest's integration tests use the sink tests' fresh archive databases on the session's warehouse."""

from tests.integration.sinks.conftest import archive, fresh_archive  # noqa: F401 (fixtures)
