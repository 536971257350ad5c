"""Operator tooling: dead-letter listing and replay (`kap-dlq`), Kafka clients
configured from the environment exactly like the services' broker."""
