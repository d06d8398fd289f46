"""SMTP delivery with aiosmtplib: the city's relay in production, the mail catcher locally.

Failures are sorted into the two kinds the notifier treats differently: transient (connection
refused, timeouts, 4xx replies: try again later) and permanent (5xx replies: record and stop).
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import aiosmtplib

from services.notifier.settings import NotifierSettings


class TransientSmtpError(Exception):
    """Worth retrying: the server is unreachable, slow, or answered 4xx."""


class PermanentSmtpError(Exception):
    """Retrying will not help: the server refused the message or the recipient (5xx)."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


def classify(exc: Exception) -> Exception:
    """The notifier's view of an aiosmtplib (or socket) failure."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        if codes and all(500 <= c < 600 for c in codes):
            return PermanentSmtpError(str(exc), codes[0])
        return TransientSmtpError(str(exc))
    if isinstance(exc, aiosmtplib.SMTPResponseException) and 500 <= exc.code < 600:
        return PermanentSmtpError(f"{exc.code} {exc.message}", exc.code)
    # Everything else (4xx replies, disconnects, timeouts, refused connections) may pass later.
    return TransientSmtpError(repr(exc))


class SmtpMailer:
    """One SMTP connection reused for every email (a new TCP + SMTP handshake per email would
    cost more than the email), reopened after any failure. A lock serialises the notifier's
    consumers on it: one SMTP transaction at a time per connection."""

    def __init__(self, settings: NotifierSettings) -> None:
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    def _new_client(self) -> aiosmtplib.SMTP:
        s = self._settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            start_tls=s.smtp_starttls,
            username=s.smtp_username,
            password=s.smtp_password,
            timeout=s.smtp_timeout_s,
        )

    async def send(self, message: EmailMessage, recipient: str) -> str:
        """Sends to exactly ``recipient`` (the envelope, not the To header); returns the reply."""
        async with self._lock:
            try:
                if self._client is None or not self._client.is_connected:
                    self._client = self._new_client()
                    await self._client.connect()
                errors, reply = await self._client.send_message(message, recipients=[recipient])
            except Exception as exc:
                await self._drop()
                raise classify(exc) from exc
            if errors:  # a refused recipient among several; we only ever send to one
                code, text = next(iter(errors.values()))
                raise PermanentSmtpError(f"{code} {text}", code) if 500 <= code < 600 else TransientSmtpError(text)
            return reply

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # already broken: nothing left to close
                pass

    async def close(self) -> None:
        async with self._lock:
            if self._client is not None and self._client.is_connected:
                try:
                    await self._client.quit()
                except Exception:
                    pass
            await self._drop()

    async def ping(self) -> None:
        """Readiness: a fresh connection and a NOOP (not the shared one, which may be busy)."""
        client = self._new_client()
        await client.connect()
        try:
            await client.noop()
        finally:
            await client.quit()
