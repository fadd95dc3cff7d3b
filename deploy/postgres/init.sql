-- Dagster uses the `dagster` database (POSTGRES_DB); Lakekeeper gets its own.
CREATE DATABASE lakekeeper OWNER lakewire;
