"""The database command counter the journey benchmark reads (no database: the driver's events are built here)."""

from __future__ import annotations

from pymongo import monitoring

from services.kernel.mongo import CommandCounts


def started(command: dict[str, object]) -> monitoring.CommandStartedEvent:
    return monitoring.CommandStartedEvent(command, "ecp_test", request_id=1, connection_id=("127.0.0.1", 27017), operation_id=1)


def test_commands_are_counted_by_name_and_collection() -> None:
    counts = CommandCounts()
    for command in ({"find": "accounts", "filter": {}}, {"find": "accounts"}, {"update": "dossiers", "updates": []}):
        counts.started(started(command))
    assert counts.snapshot() == {"find accounts": 2, "update dossiers": 1}


def test_a_get_more_is_counted_against_its_cursor_collection() -> None:
    counts = CommandCounts()
    counts.started(started({"getMore": 123456789, "collection": "deliveries"}))
    assert counts.snapshot() == {"getMore deliveries": 1}


def test_a_command_without_a_collection_is_counted_by_name_alone() -> None:
    counts = CommandCounts()
    counts.started(started({"ping": 1}))
    counts.started(started({"endSessions": [{"id": "x"}]}))
    assert counts.snapshot() == {"endSessions": 1, "ping": 1}
