"""Infrastructure: configuration, the composition root, the event store, Kafka and Postgres."""
