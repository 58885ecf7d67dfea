"""Feature command groups of the `followup` CLI; each module has `register(app)`."""
