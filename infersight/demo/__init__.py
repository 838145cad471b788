"""``infersight demo``: small models, their detectors, and phased KServe traffic through the real stack."""
