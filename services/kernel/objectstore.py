"""Everything that touches the S3 client (minio SDK). The SDK is blocking: every call runs in a
thread. Any failure other than "no such object" is ``StorageUnavailable``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import urllib3
from minio import Minio
from minio.error import S3Error
from minio.sse import SseS3

from services.kernel.settings import S3Settings

T = TypeVar("T")
_MISSING = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}


class StorageUnavailable(ConnectionError):
    """S3 is down or refused the request."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    last_modified: datetime | None
    size: int


class ObjectStore:
    """A bucket: put, read in chunks, list, delete, and presigned download links.

    ``public_endpoint`` is the host the presigned links are signed for (the one browsers reach);
    ``sse`` asks the server for server-side encryption (SSE-S3) where it offers it.
    """

    def __init__(
        self, settings: S3Settings, *, public_endpoint: str | None = None, public_secure: bool = False, sse: bool = False
    ) -> None:
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
        self._sse = SseS3() if sse else None
        # Presigning is computed offline; the URL must be signed for the host the client will use.
        self._public = Minio(
            public_endpoint or settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=public_secure if public_endpoint else settings.secure,
            region=settings.region,
        )

    async def ready(self) -> None:
        exists = await asyncio.to_thread(self._client.bucket_exists, self.bucket)
        if not exists:
            raise LookupError(f"bucket {self.bucket} does not exist")

    async def _call(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except S3Error as exc:
            raise StorageUnavailable(f"S3 error {exc.code}") from exc
        except Exception as exc:
            raise StorageUnavailable(f"S3 unavailable: {exc!r}") from exc

    async def put_file(self, key: str, path: str, size: int, content_type: str, metadata: dict[str, str]) -> None:
        def put() -> None:
            with open(path, "rb") as data:
                self._client.put_object(
                    self.bucket, key, data, length=size, content_type=content_type,
                    metadata={k: quote(v, safe=" ._-()") for k, v in metadata.items()}, sse=self._sse,
                )

        await self._call(put)

    async def remove(self, key: str) -> None:
        """Deletes the object; an object already gone is not an error (S3 says so too)."""
        await self._call(lambda: self._client.remove_object(self.bucket, key))

    async def exists(self, key: str) -> bool:
        def stat() -> bool:
            try:
                self._client.stat_object(self.bucket, key)
                return True
            except S3Error as exc:
                if exc.code in _MISSING:
                    return False
                raise

        return await self._call(stat)

    async def list(self, prefix: str) -> list[StoredObject]:
        def listing() -> list[StoredObject]:
            return [
                StoredObject(o.object_name, o.last_modified, o.size or 0)
                for o in self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
                if o.object_name
            ]

        return await self._call(listing)

    async def chunks(self, key: str, chunk_bytes: int) -> AsyncIterator[bytes]:
        """The object's bytes, a chunk at a time (never the whole object in memory)."""
        response: Any = await self._call(lambda: self._client.get_object(self.bucket, key))
        try:
            while True:
                chunk = await self._call(lambda: response.read(chunk_bytes))
                if not chunk:
                    return
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def download_url(self, key: str, ttl: timedelta, disposition: str, content_type: str) -> str:
        return await self._call(
            lambda: self._public.presigned_get_object(
                self.bucket, key, expires=ttl,
                response_headers={"response-content-disposition": disposition, "response-content-type": content_type},
            )
        )
