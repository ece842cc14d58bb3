"""Binance spot: URLs, message shapes, parser and depth sync rule. Nothing venue-specific lives elsewhere."""
