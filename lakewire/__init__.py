"""The composition root: the ``lakewire`` CLI, the embedded supervisor, platform secrets/init."""
