"""The queries behind the API, one module per resource. Each takes keyword-only arguments and
a session; route handlers stay thin.

- ``runs``: create or resume, read, list, series keys, rule settings
- ``points``: a batch of points stored (ingest's storage stage)
- ``series``: series read back, downsampled
- ``rollups``: the pre-aggregated min/max buckets behind long reads
- ``samples``: sample grids
- ``alerts``: health, alerts, acknowledgements, the event feed
"""
