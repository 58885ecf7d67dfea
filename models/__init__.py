"""Storage: SQLModel tables, the engine and session factory, and the query functions."""
