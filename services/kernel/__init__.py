"""Shared kernel: the few pieces every service needs and that must behave the same everywhere.

Event envelope, event registry, transactional outbox and its relay, the idempotent consumer,
settings, logging, readiness checks and the HTTP app factory. Each third-party client library
(aiokafka, motor, minio) is imported only by the module that owns it, so it can be swapped in
one place.
"""
