import gc
import weakref
from datetime import UTC, datetime

import pytest

from schemas.contracts.identity import AccountActivated
from services.kernel.envelope import UnknownEventType, envelope_class, event_json, new_event, parse_event


def _activated() -> AccountActivated:
    return AccountActivated(account_id="a1", email="marie@example.org", display_name="Marie", activated_at=datetime.now(UTC))


def test_a_new_event_is_a_cloudevent_keyed_by_its_aggregate() -> None:
    event = new_event(_activated(), source="/identity", subject="a1")
    assert event.specversion == "1.0"
    assert event.type == "fr.montclair-sur-loire.ecp.AccountActivated"
    assert event.name == "AccountActivated"
    assert event.subject == "a1"
    assert event.dataschema == "urn:ecp:schemas:events:AccountActivated.v1"


def test_a_new_chain_is_correlated_by_the_first_event_id_and_later_events_keep_it() -> None:
    first = new_event(_activated(), source="/identity", subject="a1")
    assert first.correlationid == first.id
    second = new_event(_activated(), source="/identity", subject="a1", correlation_id=first.correlationid, causation_id=first.id)
    assert (second.correlationid, second.causationid) == (first.id, first.id)


def test_an_event_survives_serialisation_with_its_typed_data() -> None:
    event = new_event(_activated(), source="/identity", subject="a1")
    parsed = parse_event(event_json(event))
    assert parsed == event
    assert isinstance(parsed.data, AccountActivated)


def test_an_event_published_before_the_type_prefix_still_parses_as_its_model() -> None:
    event = new_event(_activated(), source="/identity", subject="a1")
    legacy = event_json(event).replace(b'"fr.montclair-sur-loire.ecp.AccountActivated"', b'"AccountActivated"')
    parsed = parse_event(legacy)
    assert isinstance(parsed.data, AccountActivated)
    assert (parsed.type, parsed.name) == ("AccountActivated", "AccountActivated")


def test_unknown_fields_added_by_a_newer_producer_are_ignored() -> None:
    event = new_event(_activated(), source="/identity", subject="a1")
    raw = event_json(event).replace(b'"display_name"', b'"nickname":"M","display_name"')
    assert parse_event(raw).data == event.data


@pytest.mark.parametrize("raw", [b"not json", b"{}", b'{"type":"AccountActivated"}'])
def test_malformed_events_are_rejected(raw: bytes) -> None:
    with pytest.raises(ValueError):
        parse_event(raw)


def test_an_unknown_event_type_is_reported_as_such() -> None:
    raw = event_json(new_event(_activated(), source="/identity", subject="a1")).replace(
        b'"type":"fr.montclair-sur-loire.ecp.AccountActivated"', b'"type":"fr.montclair-sur-loire.ecp.SomethingElse"'
    )
    with pytest.raises(UnknownEventType):
        parse_event(raw)


def test_the_typed_envelope_class_is_built_once_and_kept_for_every_later_event() -> None:
    first = parse_event(event_json(new_event(_activated(), source="/t", subject="a1")))
    built = weakref.ref(type(first))
    del first
    gc.collect()  # pydantic alone keeps parametrised classes weakly: its own copy would go here
    second = new_event(_activated(), source="/t", subject="a2")
    assert built() is type(second) is type(parse_event(event_json(second))) is envelope_class(AccountActivated)
