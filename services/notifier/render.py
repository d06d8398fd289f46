"""Turns an event into an email: jinja2 templates (text and HTML parts, one shared layout) and
the MIME message with its stable Message-ID. No network I/O: only the template files are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email import charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notifier import domain
from services.notifier.settings import NotifierSettings

TEMPLATES_DIR = Path(__file__).parent / "templates"
UTF8 = "utf-8"
# Quoted-printable bodies: French text stays readable in the raw message (base64 would not).
_QUOTED_PRINTABLE_UTF8 = charset.Charset(UTF8)
_QUOTED_PRINTABLE_UTF8.body_encoding = charset.QP


@dataclass(frozen=True)
class RenderedMail:
    template: str
    subject: str
    text: str
    html: str


def environment() -> Environment:
    # Autoescape for the HTML part only: the text part must keep "&" and "<" as they are.
    # StrictUndefined: a template naming a field its event lacks fails in the unit tests, not
    # silently in a family's mailbox.
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


class Renderer:
    def __init__(self, settings: NotifierSettings) -> None:
        self._settings = settings
        self._env = environment()
        # What the shared layout and every template may use besides the event's own data.
        self._globals: dict[str, Any] = {
            "town_name": settings.town_name,
            "town_contact_email": settings.town_contact_email,
            "portal_url": settings.portal_url(),
            "login_url": settings.portal_url(settings.login_path),
            "forgot_password_url": settings.portal_url(settings.forgot_password_path),
            "household_url": settings.portal_url(settings.household_path),
            "enrolment_url": settings.portal_url(settings.enrolment_path),
        }

    def render(self, mail: domain.MailSpec, data: Mapping[str, Any], event_time: datetime) -> RenderedMail:
        context = {
            **domain.template_context(data, event_time, self._settings.timezone),
            **self._globals,
            "subject": mail.subject,
        }
        if data.get("enrolment_id"):  # the link opens that enrolment's own certificate
            context["certificate_url"] = self._settings.portal_url(
                self._settings.certificate_path.format(enrolment_id=data["enrolment_id"]))
            context.setdefault("child_first_name", None)  # unknown to the projection: « votre enfant »
        text = self._env.get_template(f"{mail.template}.txt").render(context)
        html = self._env.get_template(f"{mail.template}.html").render(context)
        return RenderedMail(template=mail.template, subject=mail.subject, text=text.strip() + "\n", html=html)


def build_message(
    rendered: RenderedMail,
    *,
    sender: str,
    recipient: str,
    display_name: str | None,
    event_id: str,
    date: datetime,
) -> Message:
    """The MIME message: multipart/alternative, text first (the fallback), HTML second.

    Message-ID and Date come from the event, so every retry of the same delivery is byte-for-byte
    the same email and a receiving system can deduplicate it. Built with the ``compat32`` MIME
    classes, whose headers are stored as given (encoded here): the default policy's header
    objects cost four times as much CPU, most of what the notifier spent per email.
    """
    message = MIMEMultipart("alternative", boundary=f"==ecp-{domain.recipient_hash(event_id, recipient)}==")
    # A boundary derived from the delivery instead of a random one: retries are identical bytes.
    message["Subject"] = Header(rendered.subject)  # plain when ASCII, else RFC 2047 in UTF-8
    message["From"] = sender
    message["To"] = _address_header(display_name, recipient)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = domain.message_id(event_id, recipient)
    message["Content-Language"] = "fr"
    # Tells mail servers and autoresponders that nobody wrote it by hand (RFC 3834).
    message["Auto-Submitted"] = "auto-generated"
    message["X-ECP-Template"] = rendered.template
    message.attach(MIMEText(rendered.text, "plain", _QUOTED_PRINTABLE_UTF8))  # type: ignore[arg-type]
    message.attach(MIMEText(rendered.html, "html", _QUOTED_PRINTABLE_UTF8))  # type: ignore[arg-type]
    return message


def _address_header(display_name: str | None, recipient: str) -> str:
    if not display_name:
        return recipient
    # formataddr quotes the name and RFC 2047-encodes it when it is not ASCII; whitespace (and so
    # any line break) is collapsed first, so a name cannot inject another header or address.
    return formataddr((" ".join(display_name.split()), recipient), charset=UTF8)
