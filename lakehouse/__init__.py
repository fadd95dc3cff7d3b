"""The data layer: settings, object store, landing formats, Delta/Iceberg tables, embedded SQL."""
