"""infersight: payload logging and monitoring for model serving, built on Kafka."""

__version__ = "0.1.0"
