"""Password reset and activation resend do the same work whether or not the address has an
account (issue #18, item 12): one link built, its event built, one database write, one relay
wake-up after the answer. Their timing is measured by bench/enumeration.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.identity.domain import AccountState
from services.identity.tests.fakes import service_with_account

EMAIL = "camille.martin@example.org"


async def work_done(route: str, email: str, *, pending: bool) -> tuple[int, int, Any]:
    service, store, account_id = await service_with_account(EMAIL, "tartine au miel de mai", neutral_answer_relay_delay_s=0)
    if pending:
        store.accounts[account_id]["state"] = AccountState.PENDING_ACTIVATION
    wakes: list[int] = []
    service._events_queued = lambda: wakes.append(1)
    answer = await getattr(service, route)(email)
    await asyncio.sleep(0.01)
    return store.writes, len(wakes), answer


@pytest.mark.parametrize("route", ["request_reset", "resend_activation"])
async def test_an_unknown_address_costs_the_same_database_write_and_relay_wake_up_as_an_account(route: str) -> None:
    known = await work_done(route, EMAIL, pending=True)
    unknown = await work_done(route, "personne@example.org", pending=True)
    assert known == unknown == (1, 1, known[2])


async def test_a_resend_for_an_account_already_active_does_the_same_work_too() -> None:
    assert await work_done("resend_activation", EMAIL, pending=False) == await work_done("resend_activation", EMAIL, pending=True)
