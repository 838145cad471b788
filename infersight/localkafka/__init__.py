"""A real single-node Apache Kafka (KRaft) for local use, tests and the demo."""

from infersight.localkafka.runner import KafkaStatus, LocalKafka, LocalKafkaError

__all__ = ["KafkaStatus", "LocalKafka", "LocalKafkaError"]
