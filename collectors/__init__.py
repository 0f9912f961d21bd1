"""Collectors: sources (one module per protocol), the ingestion pipeline, the store-and-forward spool."""
