"""Access tokens signed here are verified by the kernel's verifier, as other services do."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from services.identity.tokens import KeyRing, generate_signing_key
from services.kernel.auth import InvalidToken, RevokedAccounts, TokenVerifier

SECRET = "test-secret"


def verifier_for(ring: KeyRing) -> TokenVerifier:
    async def fetch() -> dict:
        return ring.jwks()

    return TokenVerifier(fetch, refetch_interval_s=0)


async def test_a_signed_token_verifies_offline_and_carries_the_account_and_role() -> None:
    now = datetime.now(UTC)
    ring = KeyRing([generate_signing_key(SECRET, now)], SECRET)
    token = ring.sign_access_token(account_id="acc-1", role="family", now=now, ttl=timedelta(minutes=10))
    principal = await verifier_for(ring).verify(token)
    assert (principal.account_id, principal.role) == ("acc-1", "family")


async def test_an_expired_token_is_refused() -> None:
    now = datetime.now(UTC)
    ring = KeyRing([generate_signing_key(SECRET, now)], SECRET)
    token = ring.sign_access_token(account_id="a", role="family", now=now - timedelta(hours=1), ttl=timedelta(minutes=10))
    with pytest.raises(InvalidToken):
        await verifier_for(ring).verify(token)


async def test_a_token_signed_by_a_key_not_in_the_published_set_is_refused() -> None:
    now = datetime.now(UTC)
    published = KeyRing([generate_signing_key(SECRET, now)], SECRET)
    forger = KeyRing([generate_signing_key(SECRET, now)], SECRET)
    token = forger.sign_access_token(account_id="a", role="admin", now=now, ttl=timedelta(minutes=10))
    with pytest.raises(InvalidToken):
        await verifier_for(published).verify(token)


async def test_a_tampered_token_is_refused() -> None:
    now = datetime.now(UTC)
    ring = KeyRing([generate_signing_key(SECRET, now)], SECRET)
    header, payload, signature = ring.sign_access_token(account_id="a", role="family", now=now, ttl=timedelta(minutes=10)).split(".")
    forged_payload = payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB")
    with pytest.raises(InvalidToken):
        await verifier_for(ring).verify(f"{header}.{forged_payload}.{signature}")


async def test_after_a_rotation_old_tokens_still_verify_and_the_new_key_signs_once_due() -> None:
    now = datetime.now(UTC)
    old = generate_signing_key(SECRET, now - timedelta(days=1))
    new = generate_signing_key(SECRET, now - timedelta(minutes=2), signs_from=now - timedelta(minutes=1))
    before = KeyRing([old], SECRET).sign_access_token(account_id="a", role="family", now=now, ttl=timedelta(minutes=10))
    ring = KeyRing([old, new], SECRET)
    assert ring.current(now - timedelta(minutes=2)).kid == old.kid  # published, not signing yet
    assert ring.current(now).kid == new.kid
    verifier = verifier_for(ring)
    assert (await verifier.verify(before)).account_id == "a"
    after = ring.sign_access_token(account_id="b", role="family", now=now, ttl=timedelta(minutes=10))
    assert (await verifier.verify(after)).account_id == "b"


def test_private_keys_are_stored_encrypted() -> None:
    key = generate_signing_key(SECRET, datetime.now(UTC))
    assert b"ENCRYPTED PRIVATE KEY" in key.private_pem
    assert "d" not in key.public_jwk  # the JWKS never carries private material


async def test_a_valid_token_of_an_account_deleted_since_is_refused_by_a_verifier_fed_by_the_event() -> None:
    now = datetime.now(UTC)
    ring = KeyRing([generate_signing_key(SECRET, now)], SECRET)
    revoked = RevokedAccounts(timedelta(minutes=20))

    async def fetch() -> dict:
        return ring.jwks()

    verifier = TokenVerifier(fetch, refetch_interval_s=0, revoked=revoked.is_revoked)
    token = ring.sign_access_token(account_id="acc-1", role="family", now=now, ttl=timedelta(minutes=10))
    assert (await verifier.verify(token)).account_id == "acc-1"
    revoked.take(json.dumps({"type": "fr.montclair-sur-loire.ecp.AccountDeleted",
                             "data": {"account_id": "acc-1", "deleted_at": now.isoformat()}}).encode())
    with pytest.raises(InvalidToken):
        await verifier.verify(token)
