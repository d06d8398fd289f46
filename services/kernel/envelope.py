"""CloudEvents 1.0 envelope (structured JSON mode) and the registry of event types.

Every event type is a pydantic model of its ``data`` declared with its CloudEvents type name,
version and Kafka topic. The JSON Schemas under ``schemas/events`` are generated from these
models (``python -m services.kernel.schemas write``) and a test fails when they drift.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from services.kernel import telemetry

SPEC_VERSION = "1.0"
SCHEMA_URI_PREFIX = "urn:ecp:schemas:events:"
CONTENT_TYPE = "application/cloudevents+json"
# CloudEvents recommends a reverse-DNS prefix for ``type``: the town's domain, then the product.
# Events published before the prefix existed carry the bare name; readers accept both.
TYPE_PREFIX = "fr.montclair-sur-loire.ecp."


class EventData(BaseModel):
    """Base of every event's ``data``. Subclasses set the three class variables."""

    # Within a version producers may add optional fields: readers ignore what they do not know.
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    version: ClassVar[int] = 1
    topic: ClassVar[str]

    @classmethod
    def schema_id(cls) -> str:
        return f"{cls.event_type}.v{cls.version}"

    @classmethod
    def cloudevents_type(cls) -> str:
        """The CloudEvents ``type`` written on the wire, e.g. ``fr.montclair-sur-loire.ecp.DossierValidated``."""
        return f"{TYPE_PREFIX}{cls.event_type}"

    @classmethod
    def dataschema(cls) -> str:
        return f"{SCHEMA_URI_PREFIX}{cls.schema_id()}"


DataT = TypeVar("DataT", bound=BaseModel)


class CloudEvent(BaseModel, Generic[DataT]):
    """A CloudEvents 1.0 event with the correlation and causation extensions."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: str = SPEC_VERSION
    id: str
    source: str
    type: str
    subject: str = Field(description="The aggregate id; also the Kafka message key.")
    time: datetime
    datacontenttype: str = "application/json"
    dataschema: str
    correlationid: str = Field(description="Id of the user request or event chain this event belongs to.")
    causationid: str | None = Field(default=None, description="Id of the event or request that caused this one.")
    traceparent: str | None = Field(
        default=None,
        # Left out of the JSON when absent: CloudEvents extension attributes are absent, not null.
        exclude_if=lambda value: value is None,
        description="W3C trace context of the work that wrote this event (CloudEvents distributed-tracing "
        "extension): the consumers' work joins that trace. Absent when it was not traced.",
    )
    data: DataT

    @property
    def name(self) -> str:
        """The event type without the reverse-DNS prefix (``DossierValidated``), whichever form
        the producer wrote."""
        return self.type.removeprefix(TYPE_PREFIX)


class EventRegistry:
    """Maps CloudEvents type names to their data models."""

    def __init__(self) -> None:
        self._by_type: dict[str, type[EventData]] = {}

    def register(self, model: type[EventData]) -> type[EventData]:
        known = self._by_type.get(model.event_type)
        if known is not None and known is not model:
            raise ValueError(f"event type {model.event_type} registered twice")
        self._by_type[model.event_type] = model
        return model

    def model_for(self, event_type: str) -> type[EventData] | None:
        """The model of a CloudEvents ``type``, prefixed or (as before the prefix) bare."""
        return self._by_type.get(event_type.removeprefix(TYPE_PREFIX))

    def all(self) -> list[type[EventData]]:
        return sorted(self._by_type.values(), key=lambda m: (m.topic, m.event_type))


registry = EventRegistry()

# Pydantic keeps parametrised generic classes only weakly: without a reference of our own,
# ``CloudEvent[Model]`` was rebuilt (schema, validator, serializer) for nearly every event, a
# third of the notifier's CPU. A handful of event types, so kept for the process's lifetime.
_envelopes: dict[type[BaseModel], type[CloudEvent[Any]]] = {}
_ANY_DATA_ENVELOPE: type[CloudEvent[Any]] = CloudEvent[dict[str, Any]]


def envelope_class(model: type[BaseModel]) -> type[CloudEvent[Any]]:
    """``CloudEvent[model]``, built once."""
    envelope = _envelopes.get(model)
    if envelope is None:
        envelope = _envelopes[model] = CloudEvent[model]  # type: ignore[valid-type]
    return envelope


def event_type(model: type[EventData]) -> type[EventData]:
    """Class decorator declaring an event type in the shared registry."""
    return registry.register(model)


def new_event(
    data: EventData,
    *,
    source: str,
    subject: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent[Any]:
    """Builds the envelope for ``data``; a new correlation id starts a chain when none is given."""
    ident = event_id or str(uuid.uuid4())
    # CloudEvents distributed-tracing extension: the consumers' work joins the trace in hand.
    traceparent = telemetry.current_traceparent()
    return envelope_class(type(data))(
        id=ident,
        source=source,
        type=data.cloudevents_type(),
        subject=subject,
        time=time or datetime.now(UTC),
        dataschema=data.dataschema(),
        correlationid=correlation_id or ident,
        causationid=causation_id,
        data=data,
        traceparent=traceparent,
    )


class UnknownEventType(ValueError):
    pass


def parse_event(raw: bytes | str, *, registry_: EventRegistry = registry) -> CloudEvent[Any]:
    """Parses and validates a structured CloudEvent; raises ``ValueError`` on anything malformed."""
    envelope = _ANY_DATA_ENVELOPE.model_validate_json(raw)
    model = registry_.model_for(envelope.type)
    if model is None:
        raise UnknownEventType(f"unknown event type {envelope.type!r}")
    return envelope_class(model).model_validate_json(raw)


def event_json(event: CloudEvent[Any]) -> bytes:
    return event.model_dump_json().encode()
