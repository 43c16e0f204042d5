"""Storage: one port (`ObjectStore`) and its adapters.

`s3.S3ObjectStore` talks to any S3-compatible endpoint; `embedded.EmbeddedS3` runs a
private SeaweedFS S3 server for the default setup, reached through the same adapter.
"""
