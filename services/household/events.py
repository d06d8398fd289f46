"""Events the household service publishes (and, later, those it reacts to)."""

from __future__ import annotations

TOPIC = "household.dossier.v1"
# The aggregate documents whose embedded outbox the relay publishes.
OUTBOX_COLLECTION = "dossiers"
