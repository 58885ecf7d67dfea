"""Operator entry points: settings, the `followup` command line and the demo."""
