"""schemas/ is what other city systems code against: it must say exactly what the code emits."""

import json

import pytest
import yaml
from jsonschema import Draft202012Validator

from services.kernel.envelope import parse_event
from services.kernel.kafka import declared_topics
from services.kernel.schemas import EVENTS_DIR, SCHEMAS_DIR, drift, event_schema, load_all_event_models, render

EXAMPLES_DIR = SCHEMAS_DIR / "examples"
MODELS = load_all_event_models()


def test_the_schema_files_match_the_code_models_exactly() -> None:
    assert drift() == [], "run: python -m services.kernel.schemas write"


def test_a_field_added_to_a_model_is_detected_as_drift() -> None:
    model = MODELS[0]
    changed = type(model.__name__, (model,), {"__annotations__": {"extra_field": str}})
    path = EVENTS_DIR / f"{model.schema_id()}.json"
    assert render(event_schema(changed)) != path.read_text()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.schema_id())
def test_every_event_type_has_an_example_that_its_schema_and_its_model_both_accept(model: type) -> None:
    example_path = EXAMPLES_DIR / f"{model.schema_id()}.json"
    example = json.loads(example_path.read_text())
    schema = json.loads((EVENTS_DIR / f"{model.schema_id()}.json").read_text())
    Draft202012Validator.check_schema(schema)
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(example)]
    assert errors == []
    assert type(parse_event(example_path.read_bytes()).data) is model


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.schema_id())
def test_a_schema_rejects_an_event_missing_a_required_data_field(model: type) -> None:
    example = json.loads((EXAMPLES_DIR / f"{model.schema_id()}.json").read_text())
    schema = json.loads((EVENTS_DIR / f"{model.schema_id()}.json").read_text())
    first_field = next(iter(example["data"]))
    del example["data"][first_field]
    assert not Draft202012Validator(schema).is_valid(example)


def test_the_asyncapi_document_lists_every_declared_topic_and_every_event_type() -> None:
    doc = yaml.safe_load((SCHEMAS_DIR / "asyncapi.yaml").read_text())
    assert doc["asyncapi"].startswith("3.")
    assert set(doc["channels"]) == {t.name for t in declared_topics()}
    assert set(doc["components"]["messages"]) == {m.schema_id() for m in MODELS}
    for model in MODELS:
        assert model.schema_id() in doc["channels"][model.topic]["messages"]
        payload = doc["components"]["messages"][model.schema_id()]["payload"]["$ref"]
        assert (SCHEMAS_DIR / payload).resolve() == (EVENTS_DIR / f"{model.schema_id()}.json").resolve()


def test_every_example_file_belongs_to_a_known_event_type() -> None:
    assert {p.stem for p in EXAMPLES_DIR.glob("*.json")} == {m.schema_id() for m in MODELS}


def test_every_aggregate_topic_has_a_dead_letter_topic_with_the_same_partitions() -> None:
    topics = {t.name: t for t in declared_topics()}
    for name, spec in topics.items():
        if not name.endswith(".dlq"):
            assert topics[name + ".dlq"].partitions == spec.partitions >= 3


def test_secret_carrying_topics_are_marked_restricted() -> None:
    restricted = {t.name for t in declared_topics() if t.restricted}
    assert restricted == {"identity.mail.v1", "identity.mail.v1.dlq"}


def test_events_carrying_secret_links_travel_only_on_restricted_topics() -> None:
    restricted = {t.name for t in declared_topics() if t.restricted}
    with_links = [m for m in MODELS if "link" in m.model_fields]
    assert with_links, "the activation and reset links must be modelled"
    assert all(m.topic in restricted for m in with_links)
    assert not any("link" in m.model_fields for m in MODELS if m.topic not in restricted)
