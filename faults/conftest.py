"""The fault checks run by hand (`pytest faults/`) use the suite's real broker fixture."""

from tests.conftest import kafka_bootstrap

__all__ = ["kafka_bootstrap"]
