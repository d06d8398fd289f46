"""Everything that touches the S3 client (minio SDK). The SDK is blocking: calls run in a thread."""

from __future__ import annotations

import asyncio

import urllib3
from minio import Minio

from services.kernel.settings import S3Settings


class ObjectStore:
    def __init__(self, settings: S3Settings) -> None:
        self.bucket = settings.bucket
        self._client = Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            # Short timeouts and few retries: a request must fail fast with 503 when S3 is down.
            http_client=urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=2.0, read=30.0),
                retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
                maxsize=16,
            ),
        )

    async def ready(self) -> None:
        exists = await asyncio.to_thread(self._client.bucket_exists, self.bucket)
        if not exists:
            raise LookupError(f"bucket {self.bucket} does not exist")
