"""Settings from the environment (prefix ``ECP_``) with defaults that work on a local `make up`."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every service reads. A service subclasses it to add its own fields."""

    model_config = SettingsConfigDict(env_prefix="ECP_", extra="ignore")

    service_name: str = "ecp"
    environment: str = "local"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Prefix the gateway strips before forwarding, so OpenAPI documents show public paths.
    public_prefix: str = ""
    public_base_url: str = "http://127.0.0.1:8080"
    log_level: str = "INFO"
    # Addresses whose X-Forwarded-* headers are believed: the gateway's ("*" behind a private network).
    trusted_proxies: str = "127.0.0.1"

    mongo_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongo_timeout_ms: int = 2000
    kafka_bootstrap: str = "127.0.0.1:9092"
    # The service's own principal on the broker (SASL/SCRAM-SHA-512); empty = anonymous, which a
    # secured broker refuses. `make up` generates one per service under .local/secrets/kafka.
    kafka_username: str = ""
    kafka_password: str = ""
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    # CA bundle of the brokers' TLS listener (SASL_SSL); empty = SASL over plain TCP (local only).
    kafka_ssl_cafile: str = ""
    # Where access tokens' public keys are published (the identity service).
    jwks_url: str = "http://127.0.0.1:8101/.well-known/jwks.json"
    # Where deleted accounts are announced (AccountDeleted): each process refuses their tokens
    # at once. Empty: no feed (identity checks its own database). The look-back must cover an
    # access token's lifetime, so a restarted process still knows every recent deletion.
    revocation_topic: str = "identity.account.v1"
    revocation_lookback_minutes: float = 20
    # Overrides schemas/topics.yaml's replication factor when creating topics (3 on a real cluster).
    topics_replication_factor: int | None = None

    # False when the relay runs as its own process (python -m services.kernel.relay).
    run_outbox_relay: bool = True
    outbox_poll_interval_s: float = 0.5
    outbox_lease_s: float = 30.0
    outbox_batch_size: int = 100

    # Metrics and traces (services.kernel.telemetry): ECP_TELEMETRY=off starts without either.
    telemetry: bool = True
    # OTLP/HTTP endpoint receiving spans (Jaeger locally); empty: metrics only, no span exported.
    otlp_endpoint: str = "http://127.0.0.1:4318"
    # Share of new traces kept (parent-based: a trace is kept or dropped whole).
    trace_sample_ratio: float = 1.0

    # How often each service runs its retention purges (docs/rgpd.md).
    purge_interval_s: float = 3600.0

    consumer_max_attempts: int = 3
    consumer_backoff_initial_s: float = 0.2
    consumer_backoff_max_s: float = 10.0

    @property
    def database_name(self) -> str:
        """Each service owns its own database; none is shared."""
        return f"ecp_{self.service_name}"


class S3Settings(BaseSettings):
    """Object storage, for the services that keep files."""

    model_config = SettingsConfigDict(env_prefix="ECP_S3_", extra="ignore")

    endpoint: str = "127.0.0.1:9000"
    access_key: str = "ecp:ecp"
    secret_key: str = "ecp-local-secret"
    secure: bool = False
    region: str = "us-east-1"
    bucket: str = "ecp-documents"
