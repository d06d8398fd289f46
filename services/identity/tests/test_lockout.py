"""Password guessing stays expensive without letting a stranger lock the owner out (issue #18,
items 10 and 11): counters per account and client address, wrong guesses only, cleared by a
completed reset; the routes that check the current password count like a login."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.identity.domain import issue_link
from services.identity.tests.fakes import service_with_account
from services.identity.usecases import InvalidCredentials, TooManyAttempts

EMAIL = "camille.martin@example.org"
PASSWORD = "tartine au miel de mai"
ATTACKER = "203.0.113.7"
OWNER = "198.51.100.20"


async def guesses(service, n: int, client: str, email: str = EMAIL) -> list[str]:  # type: ignore[no-untyped-def]
    outcomes = []
    for _ in range(n):
        try:
            await service.login(email, "pas le bon mot de passe", client=client)
            outcomes.append("ok")
        except InvalidCredentials:
            outcomes.append("401")
        except TooManyAttempts:
            outcomes.append("429")
    return outcomes


async def test_a_stranger_guessing_from_one_address_is_throttled_and_the_owner_still_gets_in() -> None:
    service, _, _ = await service_with_account(EMAIL, PASSWORD)
    assert await guesses(service, 12, ATTACKER) == ["401"] * 10 + ["429"] * 2
    with pytest.raises(TooManyAttempts):
        await service.login(EMAIL, PASSWORD, client=ATTACKER)  # even the right one: no oracle
    assert (await service.login(EMAIL, PASSWORD, client=OWNER)).access_token


async def test_successful_logins_are_not_counted() -> None:
    service, _, _ = await service_with_account(EMAIL, PASSWORD)
    for _ in range(15):
        await service.login(EMAIL, PASSWORD, client=OWNER)
    assert await guesses(service, 10, OWNER) == ["401"] * 10


async def test_a_wrong_login_says_how_many_tries_are_left_from_that_address() -> None:
    service, _, _ = await service_with_account(EMAIL, PASSWORD)
    with pytest.raises(InvalidCredentials) as first:
        await service.login(EMAIL, "pas le bon mot de passe", client=OWNER)
    assert first.value.details["attempts_left"] == 9


async def test_a_guess_spread_over_many_addresses_meets_the_accounts_ceiling() -> None:
    service, _, _ = await service_with_account(EMAIL, PASSWORD, login_failures_per_account_any_address=25)
    outcomes = [o for i in range(4) for o in await guesses(service, 8, f"203.0.113.{i}")]
    assert outcomes.count("401") == 25 and outcomes[25:] == ["429"] * 7


async def test_a_completed_reset_clears_the_accounts_counters() -> None:
    service, store, account_id = await service_with_account(EMAIL, PASSWORD, login_failures_per_account_any_address=25)
    await guesses(service, 11, OWNER)
    for i in range(3):
        await guesses(service, 10, f"203.0.113.{i}")
    with pytest.raises(TooManyAttempts):
        await service.login(EMAIL, PASSWORD, client=OWNER)
    token, link = issue_link(service._now(), timedelta(hours=1))
    store.accounts[account_id]["reset_links"] = [{"hash": link.hash, "expires_at": link.expires_at}]
    await service.confirm_reset(token, "lampe verte sur le piano")
    assert (await service.login(EMAIL, "lampe verte sur le piano", client=OWNER)).access_token
    assert (await service.login(EMAIL, "lampe verte sur le piano", client="192.0.2.99")).access_token


async def test_an_unknown_address_is_limited_exactly_like_a_known_one() -> None:
    service, _, _ = await service_with_account(EMAIL, PASSWORD)
    assert await guesses(service, 11, ATTACKER, email="personne@example.org") == await guesses(service, 11, ATTACKER)


@pytest.mark.parametrize("route", ["change_password", "delete_account"])
async def test_the_routes_that_check_the_current_password_are_limited_like_login(route: str) -> None:
    service, _, account_id = await service_with_account(EMAIL, PASSWORD)

    async def attempt(password: str, client: str) -> str:
        try:
            if route == "change_password":
                await service.change_password(account_id, password, "lampe verte sur le piano", client=client)
            else:
                await service.delete_account(account_id, password, client=client)
            return "ok"
        except InvalidCredentials:
            return "401"
        except TooManyAttempts:
            return "429"

    assert [await attempt("pas le bon mot de passe", ATTACKER) for _ in range(11)] == ["401"] * 10 + ["429"]
    assert await attempt(PASSWORD, ATTACKER) == "429"
    # The counters are the login's: the stolen token's holder cannot keep guessing through login either.
    assert await guesses(service, 1, ATTACKER) == ["429"]
    assert await attempt(PASSWORD, OWNER) == "ok"
