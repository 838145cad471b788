"""Ingest: the HTTP CloudEvents receiver that writes every event to Kafka."""
