"""lakewire."""
