"""Scenarios and simulated reviewers that drive the real adapters (demo, benchmarks)."""
