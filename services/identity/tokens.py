"""Access tokens (EdDSA-signed JWTs with a key id) and the public key set (JWKS).

Keys are Ed25519. Private keys are kept encrypted with a secret from the settings. Rotation adds
a new key that signs from then on; older keys stay in the JWKS until every token they signed has
expired, so a rotation logs nobody out. Refresh tokens are opaque random strings (see domain).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.kernel.auth import ALGORITHM, AUDIENCE, ISSUER


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: bytes  # encrypted with the key-encryption secret
    public_jwk: dict[str, Any]
    created_at: datetime
    # A rotated key is published in the JWKS before it signs, so every verifier can know it first.
    signs_from: datetime


def generate_signing_key(encryption_secret: str, now: datetime, signs_from: datetime | None = None) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    kid = f"{now:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(encryption_secret.encode()),
    )
    public_jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key()))
    public_jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    return SigningKey(kid=kid, private_pem=pem, public_jwk=public_jwk, created_at=now, signs_from=signs_from or now)


class KeyRing:
    """The decrypted signing keys in memory: the newest signs, all of them verify."""

    def __init__(self, keys: list[SigningKey], encryption_secret: str) -> None:
        if not keys:
            raise ValueError("no signing key")
        self._keys = sorted(keys, key=lambda k: k.signs_from)
        # Decrypting is deliberately slow (a KDF): done once per key, not per token.
        self._private = {
            k.kid: serialization.load_pem_private_key(k.private_pem, password=encryption_secret.encode())
            for k in self._keys
        }

    def current(self, now: datetime) -> SigningKey:
        """The newest key allowed to sign by now (the oldest one if none is yet)."""
        ready = [k for k in self._keys if k.signs_from <= now]
        return max(ready, key=lambda k: k.signs_from) if ready else self._keys[0]

    @property
    def kids(self) -> list[str]:
        return [k.kid for k in self._keys]

    def sign_access_token(self, *, account_id: str, role: str, now: datetime, ttl: timedelta) -> str:
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": account_id,
            "role": role,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        key = self.current(now)
        return jwt.encode(claims, self._private[key.kid], algorithm=ALGORITHM, headers={"kid": key.kid})  # type: ignore[arg-type]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in self._keys]}
