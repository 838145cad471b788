"""Streams: Faust workers that decode, pair and batch the events on Kafka."""
