"""Composition root: settings (``settings``), logging (``logs``), the embedded broker and Kafka client
configuration (``kafka``), ClickHouse (``clickhouse``), the running system (``stack``: broker, one
process per worker role, the projection), the demo day (``demo``), road tables (``road_table``) and
the ``milestream`` command line (``cli``).

May import every package of ours; nothing imports it but the entry points (``milestream``,
``python -m streams``)."""
