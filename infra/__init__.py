"""Composition root: settings, embedded broker and ClickHouse lifecycle, the command line."""
