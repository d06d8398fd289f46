"""Settings of the identity service (environment variables prefixed ``ECP_``)."""

from __future__ import annotations

from services.identity.domain import LOCAL_WORDS
from services.kernel.settings import CommonSettings


class IdentitySettings(CommonSettings):
    service_name: str = "identity"
    http_port: int = 8101
    public_prefix: str = "/api/identity"
    # Identity refuses a deleted account's tokens from its own database, not from its own topic.
    revocation_topic: str = ""
    # How long a deletion's answer waits for AccountDeleted to reach the broker (see usecases).
    deletion_publish_wait_s: float = 3.0
    # Then how long it lets the other services' revocation feeds read it (well above their lag).
    deletion_settle_s: float = 0.3
    activation_link_ttl_hours: float = 48
    reset_link_ttl_minutes: float = 60
    staff_invitation_ttl_hours: float = 72
    access_token_ttl_minutes: float = 10
    refresh_token_ttl_days: float = 30
    # Encrypts the private signing keys at rest. Local default only: set it in production.
    key_encryption_secret: str = "local-development-only-key-secret"
    # Attempts allowed per window before a 429 (fixed windows). Password guesses (login, and the
    # routes that check the current password) count only when wrong: per account from one client
    # address, per address over every account, and per account from anywhere (a guess spread over
    # many addresses; a completed reset clears the account's counters).
    login_attempts_per_account: int = 10
    login_attempts_per_address: int = 50
    login_failures_per_account_any_address: int = 100
    login_window_minutes: float = 15
    resends_per_hour: int = 3
    reset_requests_per_hour: int = 3
    registrations_per_address_per_hour: int = 20
    # A reset or resend's link is relayed this long after the answer (see usecases), not during it.
    neutral_answer_relay_delay_s: float = 0.05
    # Retention (docs/rgpd.md): an account never activated, or a family's account not used for
    # this long, is erased as if its owner asked; a deleted account's tombstone, then, goes too.
    pending_account_retention_days: float = 30
    dormant_account_retention_days: float = 3 * 365
    deleted_account_tombstone_days: float = 365
    argon2_memory_kib: int = 19 * 1024
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    # The town's name and local words a new password may not be built from (ECP_PASSWORD_LOCAL_WORDS,
    # a JSON list): set by each town.
    password_local_words: tuple[str, ...] = LOCAL_WORDS
