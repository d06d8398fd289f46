"""Which of household's consumer groups keep the kernel's processed event ids."""

from types import SimpleNamespace
from typing import Any

from services.household.consumers import ACCOUNTS_GROUP, DOCUMENTS_GROUP, ENROLMENTS_GROUP, ERASURE_GROUP, consumer_specs


def test_the_projection_groups_rely_on_their_idempotent_handlers_and_the_erasure_group_keeps_its_dedup() -> None:
    household: Any = SimpleNamespace(store=None)
    flags = {spec.group_id: spec.idempotent_handlers for spec in consumer_specs(household)}
    assert flags == {ACCOUNTS_GROUP: True, DOCUMENTS_GROUP: True, ENROLMENTS_GROUP: True, ERASURE_GROUP: False}
