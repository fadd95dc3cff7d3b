"""storage_service."""
