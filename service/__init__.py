"""Vellum: article ingestion and archival over S3-compatible storage."""

__version__ = "0.1.0"
