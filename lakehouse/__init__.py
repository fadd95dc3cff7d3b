"""lakehouse."""
