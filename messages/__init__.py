"""Participant- and coordinator-facing texts: Jinja2 templates per language, plus data files."""
