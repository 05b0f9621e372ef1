"""cardkit benchmarks: each compares cardkit against a baseline measured in the same run,
and ends with one JSON line ``{"bench": ..., "ratio": ...}`` (cardkit time / baseline time)."""
