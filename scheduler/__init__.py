"""Time: the injectable clock, APScheduler wiring and the dispatch pass."""
