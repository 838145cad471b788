"""Retraining sets from the store: one row per instance of each inference, Parquet, CSV or JSON Lines."""

from infersight.sinks.export.run import FORMATS, ExportResult, export

__all__ = ["FORMATS", "ExportResult", "export"]
