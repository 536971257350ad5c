"""Local runtime for development and tests (Kafka from Maven jars, PostgreSQL, supervisor)."""
