"""The tests' Kafka broker: it lives in the product, in services/devtools/kafka_launcher.py,
because ``winwin bench scaleout --real-kafka`` starts one too (the product does not import
its tests)."""

from services.devtools.kafka_launcher import KafkaBroker, KafkaUnavailable, check_available

__all__ = ["KafkaBroker", "KafkaUnavailable", "check_available"]
