"""Benchmarks behind ``milestream bench ...``: commands that print figures and ratios beside a peer or
a ceiling, with their fixtures (Solomon instances, a city day, a simulated tracking day). Not tests.

May import every package of ours except ``infra``: the command line starts brokers and hands in
client configuration and settings."""
