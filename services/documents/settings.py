"""Settings of the documents service (environment variables prefixed ``ECP_``)."""

from __future__ import annotations

from services.kernel.settings import CommonSettings


class DocumentsSettings(CommonSettings):
    service_name: str = "documents"
    http_port: int = 8103
    public_prefix: str = "/api/documents"
    clamd_host: str = "127.0.0.1"
    clamd_port: int = 3310
    clamd_timeout_s: float = 60.0

    # Uploads. The gateway also refuses bodies over 12 MB (the multipart envelope included).
    max_upload_bytes: int = 10 * 1024 * 1024
    # Directory of the temporary files uploads are streamed to (None: the system's).
    upload_tmp_dir: str | None = None
    # Ask for server-side encryption (SSE-S3) when the S3 server offers it (SeaweedFS, MinIO and cloud S3 do).
    s3_server_side_encryption: bool = True
    # Largest decoded photo (pixels) a HEIC conversion accepts: a bigger one is a decompression bomb.
    max_image_pixels: int = 80_000_000

    # Presigned download links: signed for the host the client uses, valid at most 5 minutes.
    public_endpoint: str = "127.0.0.1:9000"
    public_secure: bool = False
    download_link_ttl_s: int = 300

    # Virus scan loop: leases pending documents; clamd down means a retry with backoff.
    scan_poll_interval_s: float = 1.0
    scan_lease_s: float = 120.0
    scan_retry_initial_s: float = 2.0
    scan_retry_max_s: float = 30.0
    scan_chunk_bytes: int = 256 * 1024
    # clamd took the file but gave no verdict this many times: quarantined (« à vérifier »).
    scan_incomplete_max_attempts: int = 3

    # Sweeper: intents left "uploading" by a crash, objects without a record, retention.
    sweep_interval_s: float = 60.0
    sweep_uploading_after_s: float = 300.0
    sweep_orphan_grace_s: float = 300.0
    # Documents are purged this long after upload (the school year plus a margin); tombstones too.
    retention_days: int = 730
    tombstone_retention_days: int = 365
    # How long an erased account's id is kept to refuse an upload that raced its erasure.
    erased_marker_hours: float = 24

    # Printed on the sworn statement.
    town_name: str = "Ville de Montclair-sur-Loire"
