"""The Object Storage service: HTTP API and page over the ObjectStore, bucket events, renames."""
