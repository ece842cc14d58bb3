"""Faust agents: each takes batches of input events, feeds the pure pipelines, sends their records."""
