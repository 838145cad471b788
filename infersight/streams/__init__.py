"""Streams: quixstreams workers that read, decode, pair and batch the events on Kafka."""
