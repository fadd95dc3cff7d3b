"""The Dagster code location: bucket-events sensor, ingest/reconcile jobs, table assets, routes."""
