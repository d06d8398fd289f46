"""Events the documents service publishes (and, later, those it reacts to)."""

from __future__ import annotations

TOPIC = "documents.document.v1"
# The aggregate documents whose embedded outbox the relay publishes.
OUTBOX_COLLECTION = "documents"
