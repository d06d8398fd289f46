"""Identity rules: email normalisation, password policy, one-time links, account lifecycle.

Pure functions and value objects; no I/O. The store persists what these return.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
# zxcvbn score 3 = "safely unguessable: moderate protection from offline slow-hash scenario".
MIN_PASSWORD_SCORE = 3
FRENCH_COMMON_PASSWORDS = Path(__file__).parent / "data" / "common-passwords-fr.txt"


class AccountState(StrEnum):
    PENDING_ACTIVATION = "pending_activation"
    ACTIVE = "active"
    DELETED = "deleted"
    # A staff account an admin switched off: cannot log in; its name stays in every history.
    DEACTIVATED = "deactivated"


class Role(StrEnum):
    FAMILY = "family"
    AGENT = "agent"
    ADMIN = "admin"


def normalise_email(email: str) -> str:
    """One account per mailbox: trimmed, NFC, lower-cased (the domain is case-insensitive and
    providers treat the local part so too in practice)."""
    return unicodedata.normalize("NFC", email.strip()).lower()


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    shipped = {line.strip().lower() for line in FRENCH_COMMON_PASSWORDS.read_text().splitlines() if line.strip()}
    return frozenset(shipped | set(FREQUENCY_LISTS["passwords"]))


# Words of the place and of the service itself, which the first guess of anyone targeting this
# town's accounts would try (« Montclair2026 »); the deployment sets its own (settings).
LOCAL_WORDS = ("montclair", "loire", "mairie", "ecole", "espace", "citoyen", "premium", "scolaire", "periscolaire")


def _plain(text: str) -> str:
    """Lower case without accents: « École » and « ecole » are the same guess."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _without(password: str, words: list[str]) -> str:
    """The password's letters left once every word is taken out (digits and symbols do not count)."""
    remainder = _plain(password)
    for word in sorted(words, key=len, reverse=True):
        remainder = remainder.replace(word, "")
    return re.sub(r"[\W\d_]+", "", remainder)


def password_problems(
    password: str, *, email: str = "", display_name: str = "", local_words: tuple[str, ...] = LOCAL_WORDS
) -> list[str]:
    """What is wrong with a new password, in French; empty when it is acceptable.

    In the spirit of NIST SP 800-63B: a minimum length, no composition rules, and a refusal of
    passwords that are common, breached-style or built from the person's own details or from the
    town's name and local words.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return [f"Le mot de passe doit contenir au moins {MIN_PASSWORD_LENGTH} caractères."]
    if len(password) > MAX_PASSWORD_LENGTH:
        return [f"Le mot de passe ne doit pas dépasser {MAX_PASSWORD_LENGTH} caractères."]
    if password.lower() in common_passwords():
        return ["Ce mot de passe fait partie des mots de passe les plus courants. Choisissez-en un autre."]
    personal = [_plain(p) for p in re.split(r"[\W_]+", f"{email.split('@')[0]} {display_name}") if len(p) >= 3]
    if personal and len(_without(password, personal)) < 4:
        return ["Le mot de passe ne doit pas reprendre votre nom ou votre adresse email."]
    town = [_plain(w) for w in local_words if len(w) >= 3]
    if town and len(_without(password, [*personal, *town])) < 4:
        return ["Le mot de passe ne doit pas reprendre le nom de la ville ou des mots qui lui sont liés "
                "(par exemple « Montclair2026 »). Choisissez une phrase de passe sans rapport avec la ville."]
    strength = zxcvbn(password[:100], user_inputs=[*personal, *town])
    if strength["score"] < MIN_PASSWORD_SCORE:
        return [
            "Ce mot de passe est trop facile à deviner. Choisissez une phrase de passe plus longue, "
            "par exemple plusieurs mots sans rapport entre eux."
        ]
    return []


def new_secret_token() -> str:
    """A link token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Tokens are stored only as this hash; a database leak gives no usable link."""
    return hashlib.sha256(token.encode()).hexdigest()


class LinkStatus(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class OneTimeLink:
    """A stored single-use link: its hash and when it stops working."""

    hash: str
    expires_at: datetime

    def status_at(self, now: datetime) -> LinkStatus:
        return LinkStatus.VALID if now < self.expires_at else LinkStatus.EXPIRED


def issue_link(now: datetime, ttl: timedelta) -> tuple[str, OneTimeLink]:
    """A new token (to email) and what to store of it."""
    token = new_secret_token()
    return token, OneTimeLink(hash=token_hash(token), expires_at=now + ttl)


def activation_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/activation?jeton={token}"


def reset_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/mot-de-passe/nouveau?jeton={token}"
