"""Kraken spot, WebSocket v2: URLs, message shapes, parser and the book checksum rule. Nothing Kraken-specific lives elsewhere."""
