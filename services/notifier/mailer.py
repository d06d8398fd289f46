"""SMTP delivery with aiosmtplib: the city's relay in production, the mail catcher locally."""

from __future__ import annotations

import aiosmtplib

from services.notifier.settings import NotifierSettings


class SmtpMailer:
    def __init__(self, settings: NotifierSettings) -> None:
        self._settings = settings

    def _client(self) -> aiosmtplib.SMTP:
        s = self._settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            start_tls=s.smtp_starttls,
            username=s.smtp_username,
            password=s.smtp_password,
            timeout=5,
        )

    async def ping(self) -> None:
        client = self._client()
        await client.connect()
        try:
            await client.noop()
        finally:
            await client.quit()
