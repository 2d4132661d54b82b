"""pytest plugin: kafka_broker fixture."""
