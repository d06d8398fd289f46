"""The per-name counter behind short references (household's files, enrolment's enrolments)."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import ReturnDocument

from services.kernel.mongo import next_number


class CounterCollection:
    """Stands in for a motor collection: applies the ``$inc`` the way the server does and
    records the call, so the test sees that one find-and-modify is the whole allocation."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.calls: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = []

    async def find_one_and_update(self, filter_: dict[str, Any], update: dict[str, Any], **options: Any) -> dict[str, Any]:
        self.calls.append((filter_, update, options))
        name = filter_["_id"]
        self.values[name] = self.values.get(name, 0) + update["$inc"]["n"]
        return {"_id": name, "n": self.values[name]}


def test_each_counter_counts_from_one_on_its_own() -> None:
    counters = CounterCollection()

    async def take() -> list[int]:
        return [await next_number(counters, "enrolment-2027"), await next_number(counters, "enrolment-2027"),
                await next_number(counters, "enrolment-2028")]

    assert asyncio.run(take()) == [1, 2, 1]


def test_a_number_is_one_upserting_find_and_modify_returning_the_new_value() -> None:
    counters = CounterCollection()
    asyncio.run(next_number(counters, "dossier-2027"))
    assert counters.calls == [({"_id": "dossier-2027"}, {"$inc": {"n": 1}},
                               {"upsert": True, "return_document": ReturnDocument.AFTER})]
