from schemas.contracts.identity import AccountDeleted
from services.kernel.envelope import new_event
from services.kernel.outbox import (
    APPLIED_FIELD,
    OUTBOX_FIELD,
    PENDING_FIELD,
    applied_once,
    new_document_with_events,
    outbox_entry,
    with_events,
)
from datetime import UTC, datetime


def _entry() -> dict:
    event = new_event(AccountDeleted(account_id="a1", deleted_at=datetime.now(UTC)), source="/identity", subject="a1")
    return outbox_entry(event, AccountDeleted.topic)


def test_events_are_pushed_in_the_same_update_as_the_state_change() -> None:
    entry = _entry()
    update = with_events({"$set": {"state": "deleted"}}, [entry])
    assert update["$set"] == {"state": "deleted", PENDING_FIELD: True}
    assert update["$push"][OUTBOX_FIELD] == {"$each": [entry]}


def test_an_update_without_events_is_left_unchanged() -> None:
    update = {"$set": {"state": "x"}}
    assert with_events(update, []) == update


def test_the_outbox_entry_keeps_the_aggregate_id_as_key_and_the_serialised_event() -> None:
    entry = _entry()
    assert entry["key"] == "a1"
    assert entry["topic"] == "identity.account.v1"
    assert b'"type":"fr.montclair-sur-loire.ecp.AccountDeleted"' in entry["value"]


def test_a_new_document_without_events_is_not_flagged_pending() -> None:
    assert PENDING_FIELD not in new_document_with_events({"_id": 1}, [])
    assert new_document_with_events({"_id": 1}, [_entry()])[PENDING_FIELD] is True


def test_applied_once_excludes_documents_that_already_recorded_the_event() -> None:
    filter_, update = applied_once({"_id": "k"}, {"$inc": {"n": 1}}, "evt-1")
    assert filter_ == {"_id": "k", APPLIED_FIELD: {"$ne": "evt-1"}}
    assert update["$inc"] == {"n": 1}
    assert update["$push"][APPLIED_FIELD]["$each"] == ["evt-1"]
