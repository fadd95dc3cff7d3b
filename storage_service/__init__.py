"""The Object Storage service: HTTP API and web page over the ObjectStore, bucket events, renames."""
