"""Benchmarks against the running local stack (`make up`). They feed and observe Kafka as the
operator principal, like the integration tests (tests/integration/kafka_tools.py)."""

from tests.integration.kafka_tools import use_local_operator

use_local_operator()
