"""Per-instrument processing steps: pure state machines the agents feed one record at a time."""
