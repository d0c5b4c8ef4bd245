"""ClickHouse projections of the event log, for analysts.

Pure mapping from events to rows (``rows``), the tables (``ddl``), the KPI queries (``kpi``),
and the writer at the edge (``writer``) that batches, inserts, then commits offsets.
Never imports ``streams``.
"""
