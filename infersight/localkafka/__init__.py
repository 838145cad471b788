"""A real single-node Apache Kafka (KRaft) for local use, tests and the demo."""

from infersight.localkafka.runner import KafkaStatus, Listener, LocalKafka, LocalKafkaError

__all__ = ["KafkaStatus", "Listener", "LocalKafka", "LocalKafkaError"]
