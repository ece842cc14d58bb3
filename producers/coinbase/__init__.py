"""Coinbase Advanced Trade market data: URLs, message shapes, parser and the sequence rule. Nothing Coinbase-specific lives elsewhere."""
