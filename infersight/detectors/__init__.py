"""Detectors: alibi-detect drift, outlier and adversarial detection on batches of records."""
