"""Events the enrolment service publishes (and, later, those it reacts to)."""

from __future__ import annotations

TOPIC = "enrolment.enrolment.v1"
# The aggregate documents whose embedded outbox the relay publishes.
OUTBOX_COLLECTION = "enrolments"
