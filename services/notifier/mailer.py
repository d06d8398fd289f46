"""SMTP delivery with aiosmtplib: the city's relay in production, the mail catcher locally.

Failures are sorted into the two kinds the notifier treats differently: transient (connection
refused, timeouts, 4xx replies: try again later) and permanent (5xx replies: record and stop).
"""

from __future__ import annotations

import asyncio
from email.message import Message

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
    """A small pool of long-lived SMTP connections (a new TCP + SMTP handshake per email would
    cost more than the email): up to ``smtp_connections`` transactions at once, each on its own
    connection, opened on first use and kept for the next email. A connection that failed is
    closed and a fresh one is opened by the next send, so a restarted server is picked up."""

    def __init__(self, settings: NotifierSettings) -> None:
        self._settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(max(1, settings.smtp_connections))

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

    async def send(self, message: Message, recipient: str) -> str:
        """Sends to exactly ``recipient`` (the envelope, not the To header); returns the reply."""
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            if client is not None and client.is_connected:
                try:
                    errors, reply = await client.send_message(message, recipients=[recipient])
                except aiosmtplib.SMTPServerDisconnected:
                    # Idle too long, the server hung up before this transaction: nothing was
                    # sent, so a fresh connection tries at once instead of counting a failure.
                    _discard(client)
                except Exception as exc:
                    _discard(client)
                    raise classify(exc) from exc
                else:
                    return self._accepted(client, errors, reply)
            client = self._new_client()
            try:
                await client.connect()
                errors, reply = await client.send_message(message, recipients=[recipient])
            except Exception as exc:
                _discard(client)
                raise classify(exc) from exc
            return self._accepted(client, errors, reply)

    def _accepted(self, client: aiosmtplib.SMTP, errors: dict[str, aiosmtplib.SMTPResponse], reply: str) -> str:
        """Puts the healthy connection back for the next email; the server's reply or refusal."""
        self._idle.append(client)
        if errors:  # a refused recipient among several; we only ever send to one
            code, text = next(iter(errors.values()))
            raise PermanentSmtpError(f"{code} {text}", code) if 500 <= code < 600 else TransientSmtpError(text)
        return reply

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            if client.is_connected:
                try:
                    await client.quit()
                except Exception:  # closing anyway
                    pass
            _discard(client)

    async def ping(self) -> None:
        """Readiness: a fresh connection and a NOOP (not the shared one, which may be busy)."""
        client = self._new_client()
        await client.connect()
        try:
            await client.noop()
        finally:
            await client.quit()


def _discard(client: aiosmtplib.SMTP | None) -> None:
    if client is not None:
        try:
            client.close()
        except Exception:  # already broken: nothing left to close
            pass
