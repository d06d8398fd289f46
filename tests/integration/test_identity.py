"""Identity against the real database and Kafka: links are read from the restricted mail topic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.integration.identity_client import (
    GOOD_PASSWORD,
    NEW_PASSWORD,
    events_for,
    invited_staff,
    link_token,
    logged_in,
    person,
    registered_and_activated,
    wait_for_event,
)

HOUSEHOLD = "http://127.0.0.1:8102"


async def test_register_activate_login_refresh_logout_walks_the_whole_flow_with_its_events() -> None:
    client, email = person()
    async with client:
        response = await client.post("/auth/register", json={"email": email.upper(), "password": GOOD_PASSWORD, "display_name": "Camille  Martin"})
        assert response.status_code == 202
        token, mail = await link_token("ActivationLinkIssued", email)
        account_id = mail["subject"]
        assert mail["data"]["link"].startswith("http://127.0.0.1:8080/activation?jeton=")

        assert (await client.post("/auth/activation", json={"token": token})).json()["detail"].startswith("Votre espace est activé")
        tokens = await logged_in(client, email)
        me = await client.get("/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.json() == {"account_id": account_id, "email": email, "display_name": "Camille Martin", "role": "family"}

        renewed = (await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).json()
        assert renewed["refresh_token"] != tokens["refresh_token"]
        assert (await client.post("/auth/logout", json={"refresh_token": renewed["refresh_token"]})).status_code == 204
        assert (await client.post("/auth/refresh", json={"refresh_token": renewed["refresh_token"]})).status_code == 401

    await wait_for_event("identity.account.v1", lambda e: e["subject"] == account_id and e["type"] == "fr.montclair-sur-loire.ecp.AccountActivated")
    account_events = [e["type"] for e in await events_for("identity.account.v1", account_id)]
    assert account_events == ["fr.montclair-sur-loire.ecp.AccountRegistered", "fr.montclair-sur-loire.ecp.AccountActivated"]
    assert all(e["type"] not in {"fr.montclair-sur-loire.ecp.ActivationLinkIssued"} for e in await events_for("identity.account.v1", account_id))


async def test_login_before_activation_says_so_and_offers_a_new_link_only_to_the_right_password() -> None:
    client, email = person()
    async with client:
        await client.post("/auth/register", json={"email": email, "password": GOOD_PASSWORD, "display_name": "Léa Bernard"})
        pending = await client.post("/auth/login", json={"email": email, "password": GOOD_PASSWORD})
        assert pending.status_code == 403
        assert pending.json()["can_resend"] is True
        assert "pas encore activé" in pending.json()["detail"]
        wrong = await client.post("/auth/login", json={"email": email, "password": "pas le bon mot de passe"})
        assert wrong.status_code == 401
        # One wrong guess of the ten this address may make on this account; the right password
        # given before activation was not counted.
        assert wrong.json() == {"detail": "Adresse email ou mot de passe incorrect.", "attempts_left": 9}


async def test_expired_used_and_tampered_activation_links_each_get_a_clear_answer(db_client) -> None:
    client, email = person()
    async with client:
        await client.post("/auth/register", json={"email": email, "password": GOOD_PASSWORD, "display_name": "Léa Bernard"})
        token, mail = await link_token("ActivationLinkIssued", email)

        tampered = await client.post("/auth/activation", json={"token": token[:-2] + ("AA" if token[-2:] != "AA" else "BB")})
        assert tampered.status_code == 400
        assert tampered.json()["can_resend"] is True

        await db_client["ecp_identity"]["accounts"].update_one(
            {"_id": mail["subject"]}, {"$set": {"activation_links.0.expires_at": datetime.now(UTC) - timedelta(minutes=1)}}
        )
        expired = await client.post("/auth/activation", json={"token": token})
        assert expired.status_code == 410
        assert "expiré" in expired.json()["detail"]

        resent = await client.post("/auth/activation/resend", json={"email": email})
        assert resent.status_code == 202
        fresh, _ = await link_token("ActivationLinkIssued", email, exclude={mail["data"]["link"]})
        assert (await client.post("/auth/activation", json={"token": fresh})).status_code == 200
        used = await client.post("/auth/activation", json={"token": fresh})
        assert used.status_code == 409
        assert "déjà été utilisé" in used.json()["detail"]


async def test_a_resend_keeps_the_first_link_valid() -> None:
    client, email = person()
    async with client:
        await client.post("/auth/register", json={"email": email, "password": GOOD_PASSWORD, "display_name": "Léa Bernard"})
        first, mail = await link_token("ActivationLinkIssued", email)
        await client.post("/auth/activation/resend", json={"email": email})
        second, _ = await link_token("ActivationLinkIssued", email, exclude={mail["data"]["link"]})
        assert second != first
        assert (await client.post("/auth/activation", json={"token": first})).status_code == 200
        assert (await client.post("/auth/activation", json={"token": second})).status_code == 409


async def test_resending_is_limited_to_three_an_hour_with_a_429() -> None:
    client, email = person()
    async with client:
        await client.post("/auth/register", json={"email": email, "password": GOOD_PASSWORD, "display_name": "Léa Bernard"})
        codes = [(await client.post("/auth/activation/resend", json={"email": email})).status_code for _ in range(4)]
        assert codes == [202, 202, 202, 429]


async def test_register_and_reset_answers_are_byte_identical_for_known_and_unknown_emails() -> None:
    client, known = person()
    async with client:
        await registered_and_activated(client, known)
    unknown = f"inconnu.{known}"
    # Straight to the service, as one simulated address: the gateway's per-address limits are
    # shared by every test on this machine.
    other, _ = person()
    async with other:
        body = {"password": GOOD_PASSWORD, "display_name": "Camille Martin"}
        a = await other.post("/auth/register", json={"email": known, **body})
        b = await other.post("/auth/register", json={"email": unknown, **body})
        assert (a.status_code, a.content) == (b.status_code, b.content)
        c = await other.post("/auth/password-reset", json={"email": known})
        d = await other.post("/auth/password-reset", json={"email": f"personne.{known}"})
        assert (c.status_code, c.content) == (d.status_code, d.content)
    notice = await wait_for_event("identity.mail.v1", lambda e: e["type"] == "fr.montclair-sur-loire.ecp.ExistingAccountRegistrationAttempted" and e["data"]["email"] == known)
    assert notice["data"]["display_name"] == "Camille Martin"


async def test_repeated_failed_logins_hit_a_429_that_does_not_reveal_the_account() -> None:
    client, email = person()
    async with client:
        await registered_and_activated(client, email)
        answers = [await client.post("/auth/login", json={"email": email, "password": "mauvais mot de passe"})
                   for _ in range(11)]
        codes = [a.status_code for a in answers]
        assert codes[:10] == [401] * 10
        assert codes[10] == 429
        # Each 401 says how many tries are left, so the login page can warn before the 429.
        left = [a.json().get("attempts_left") for a in answers[:10]]
        assert left == list(range(9, -1, -1))
        limited = await client.post("/auth/login", json={"email": email, "password": GOOD_PASSWORD})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
        unknown = [await client.post("/auth/login", json={"email": f"x.{email}", "password": "mauvais mot de passe"})
                   for _ in range(11)]
        assert [a.status_code for a in unknown] == codes  # an unknown address is limited exactly the same way
        assert [a.json().get("attempts_left") for a in unknown[:10]] == left


async def test_a_password_built_from_the_towns_name_is_refused_at_registration() -> None:
    client, email = person()
    async with client:
        refused = await client.post("/auth/register", json={"email": email, "password": "Montclair2026", "display_name": "Léa Bernard"})
        assert refused.status_code == 422
        assert "nom de la ville" in refused.json()["detail"]
        assert refused.json()["errors"][0]["loc"] == ["body", "password"]


async def test_reusing_a_refresh_token_revokes_the_whole_chain() -> None:
    client, email = person()
    async with client:
        await registered_and_activated(client, email)
        first = await logged_in(client, email)
        second = (await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
        replay = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert replay.status_code == 401
        assert (await client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})).status_code == 401
        other_session = await logged_in(client, email)  # a new login starts a new chain
        assert (await client.post("/auth/refresh", json={"refresh_token": other_session["refresh_token"]})).status_code == 200


async def test_a_password_reset_link_sets_a_new_password_once_and_logs_out_every_session() -> None:
    client, email = person()
    async with client:
        account_id = await registered_and_activated(client, email)
        session = await logged_in(client, email)
        assert (await client.post("/auth/password-reset", json={"email": email})).status_code == 202
        token, _ = await link_token("PasswordResetLinkIssued", email)
        weak = await client.post("/auth/password-reset/confirm", json={"token": token, "new_password": "motdepasse123"})
        assert weak.status_code == 422
        assert weak.json()["errors"][0]["loc"] == ["body", "new_password"]
        done = await client.post("/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})
        assert done.status_code == 200
        again = await client.post("/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})
        assert again.status_code == 409
        assert (await client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})).status_code == 401
        assert (await client.post("/auth/login", json={"email": email, "password": GOOD_PASSWORD})).status_code == 401
        await logged_in(client, email, NEW_PASSWORD)
    changed = await wait_for_event("identity.account.v1", lambda e: e["subject"] == account_id and e["type"] == "fr.montclair-sur-loire.ecp.PasswordChanged")
    assert changed["data"]["via"] == "reset"


async def test_changing_my_password_needs_the_current_one_and_emits_password_changed() -> None:
    client, email = person()
    async with client:
        account_id = await registered_and_activated(client, email)
        auth = {"Authorization": f"Bearer {(await logged_in(client, email))['access_token']}"}
        wrong = await client.post("/me/password", json={"current_password": "pas celui-là", "new_password": NEW_PASSWORD}, headers=auth)
        assert wrong.status_code == 401
        ok = await client.post("/me/password", json={"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD}, headers=auth)
        assert ok.status_code == 204
        await logged_in(client, email, NEW_PASSWORD)
    await wait_for_event("identity.account.v1", lambda e: e["subject"] == account_id and e["data"].get("via") == "change")


async def test_another_service_verifies_tokens_offline_and_refuses_forged_expired_or_wrong_role_ones() -> None:
    client, email = person()
    async with client:
        account_id = await registered_and_activated(client, email)
        access = (await logged_in(client, email))["access_token"]
    async with httpx.AsyncClient(base_url=HOUSEHOLD, timeout=10) as household:
        ok = await household.get("/session", headers={"Authorization": f"Bearer {access}"})
        assert ok.json() == {"account_id": account_id, "role": "family"}
        assert (await household.get("/session", params={"require": "agent"}, headers={"Authorization": f"Bearer {access}"})).status_code == 403
        assert (await household.get("/session")).status_code == 401
        forged = _signed_by_another_key(account_id, "admin", timedelta(minutes=5))
        assert (await household.get("/session", headers={"Authorization": f"Bearer {forged}"})).status_code == 401
        expired = _signed_by_another_key(account_id, "family", timedelta(minutes=-5))
        assert (await household.get("/session", headers={"Authorization": f"Bearer {expired}"})).status_code == 401


def _signed_by_another_key(account_id: str, role: str, ttl: timedelta) -> str:
    from services.identity.tokens import KeyRing, generate_signing_key

    now = datetime.now(UTC)
    ring = KeyRing([generate_signing_key("x", now - timedelta(hours=1))], "x")
    return ring.sign_access_token(account_id=account_id, role=role, now=now - timedelta(minutes=6) if ttl.total_seconds() < 0 else now, ttl=abs(ttl))


async def test_deleting_my_account_erases_credentials_and_emits_account_deleted(db_client) -> None:
    client, email = person()
    async with client:
        account_id = await registered_and_activated(client, email)
        tokens = await logged_in(client, email)
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await client.post("/me/delete", json={"password": "pas le bon"}, headers=auth)).status_code == 401
        assert (await client.post("/me/delete", json={"password": GOOD_PASSWORD}, headers=auth)).status_code == 204
        assert (await client.post("/auth/login", json={"email": email, "password": GOOD_PASSWORD})).status_code == 401
        assert (await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).status_code == 401
    stored = await db_client["ecp_identity"]["accounts"].find_one({"_id": account_id})
    assert stored["state"] == "deleted"
    assert not {"email", "display_name", "password_hash"} & set(stored)
    assert await db_client["ecp_identity"]["refresh_tokens"].count_documents({"account_id": account_id}) == 0
    await wait_for_event("identity.account.v1", lambda e: e["subject"] == account_id and e["type"] == "fr.montclair-sur-loire.ecp.AccountDeleted")


async def test_staff_accounts_come_from_the_admin_command_and_set_their_password_from_an_email() -> None:
    email, token = await invited_staff("agent")
    _, invitation = await link_token("PasswordResetLinkIssued", email)
    assert invitation["data"]["purpose"] == "staff_invitation"
    client, _ = person()
    async with client:
        assert (await client.post("/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})).status_code == 200
        agent = await logged_in(client, email, NEW_PASSWORD)
    async with httpx.AsyncClient(base_url=HOUSEHOLD, timeout=10) as household:
        seen = await household.get("/session", params={"require": "agent"}, headers={"Authorization": f"Bearer {agent['access_token']}"})
        assert seen.json()["role"] == "agent"


async def test_only_an_admin_may_create_staff_accounts_over_http() -> None:
    client, email = person()
    async with client:
        await registered_and_activated(client, email)
        family = (await logged_in(client, email))["access_token"]
        refused = await client.post(
            "/admin/accounts", json={"email": f"x.{email}", "display_name": "X", "role": "agent"},
            headers={"Authorization": f"Bearer {family}"},
        )
        assert refused.status_code == 403


async def test_bad_input_gets_a_clear_422_and_writes_nothing(db_client) -> None:
    client, email = person()
    async with client:
        for body in [{}, {"email": "pas-un-email", "password": GOOD_PASSWORD, "display_name": "A"},
                     {"email": email, "password": "court", "display_name": "A"},
                     {"email": email, "password": GOOD_PASSWORD, "display_name": ""}]:
            response = await client.post("/auth/register", json=body)
            assert response.status_code == 422, body
            assert response.json()["detail"]
        garbage = await client.post("/auth/register", content=b"{not json", headers={"Content-Type": "application/json"})
        assert garbage.status_code == 422
    assert await db_client["ecp_identity"]["accounts"].count_documents({"email": email}) == 0


async def test_a_stranger_guessing_from_another_address_is_throttled_while_the_owner_gets_in_and_a_reset_clears_the_owners_lockout() -> None:
    owner, email = person()
    attacker, _ = person()
    async with owner, attacker:
        await registered_and_activated(owner, email)
        tries = [(await attacker.post("/auth/login", json={"email": email, "password": "mauvais mot de passe"})).status_code for _ in range(11)]
        assert tries == [401] * 10 + [429]
        assert (await attacker.post("/auth/login", json={"email": email, "password": GOOD_PASSWORD})).status_code == 429
        await logged_in(owner, email)  # from the owner's own address: not locked out
        for _ in range(3):
            await logged_in(owner, email)  # and successes do not count
        # The owner mistypes until locked out, then completes a reset: let in again at once.
        for _ in range(11):
            await owner.post("/auth/login", json={"email": email, "password": "mauvais mot de passe"})
        assert (await owner.post("/auth/login", json={"email": email, "password": GOOD_PASSWORD})).status_code == 429
        assert (await owner.post("/auth/password-reset", json={"email": email})).status_code == 202
        token, _ = await link_token("PasswordResetLinkIssued", email)
        assert (await owner.post("/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})).status_code == 200
        await logged_in(owner, email, NEW_PASSWORD)


async def test_change_password_and_delete_account_limit_wrong_current_passwords_like_login() -> None:
    client, email = person()
    async with client:
        await registered_and_activated(client, email)
        headers = {"Authorization": f"Bearer {(await logged_in(client, email))['access_token']}"}
        codes = [
            (await client.post("/me/password", headers=headers, json={"current_password": f"faux {i}", "new_password": NEW_PASSWORD})).status_code
            for i in range(6)
        ] + [(await client.post("/me/delete", headers=headers, json={"password": f"faux {i}"})).status_code for i in range(5)]
        assert codes == [401] * 10 + [429]
        refused = await client.post("/me/delete", headers=headers, json={"password": GOOD_PASSWORD})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
