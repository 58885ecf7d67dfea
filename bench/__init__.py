"""Benchmarks: the outbox fan-out through the sandbox and the dispatch pass at scale."""
