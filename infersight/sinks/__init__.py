"""Sinks: Prometheus metrics, the SQL store and detection events."""
