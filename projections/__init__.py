"""ClickHouse projections of the event log, for analysts.

Pure mapping from events to rows (``rows``), the tables (``ddl``), the KPI queries (``kpi``),
and the writer at the edge (``writer``) that batches, inserts, then commits offsets; the stream
edge's check is handed to the writer by ``infra``.

May import: ``schemas``, clickhouse-connect and confluent-kafka (the writer only). Never ``streams``
or ``infra``.
"""
