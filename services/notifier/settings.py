"""Settings of the notifier service (environment variables prefixed ``ECP_``)."""

from __future__ import annotations

from services.kernel.settings import CommonSettings


class NotifierSettings(CommonSettings):
    service_name: str = "notifier"
    http_port: int = 8104
    public_prefix: str = "/api/notifier"
    # Retention (docs/rgpd.md): the delivery log (who was sent what, when); an erased
    # recipient's tombstone (its id only) outlives the topics' retention, then goes.
    delivery_log_retention_days: float = 365
    recipient_tombstone_days: float = 30

    # SMTP: the mail catcher locally, the city's relay in production.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout_s: float = 5.0
    # Attempts inside one handler call before handing the event back to the consumer, whose own
    # backoff then retries it for as long as the SMTP server stays unreachable.
    smtp_attempts: int = 3
    smtp_backoff_initial_s: float = 0.2
    # Long-lived SMTP connections kept open, one transaction at a time on each.
    smtp_connections: int = 4
    # Events of one fetched batch handled at once, for different accounts (one account's events
    # stay in order). Also the most emails a kill -9 can catch between the server's 250 and the
    # ``sent`` record, i.e. the most duplicates a crash can cause.
    consumer_concurrency: int = 8

    # What every email says about who sends it (the shared layout).
    sender: str = "Espace Citoyen Premium <ne-pas-repondre@montclair-sur-loire.fr>"
    town_name: str = "Ville de Montclair-sur-Loire"
    town_contact_email: str = "espace-citoyen@montclair-sur-loire.fr"
    timezone: str = "Europe/Paris"
    # Pages of the portal the emails point to (public_base_url + path); the web pages own them.
    login_path: str = "/connexion"
    forgot_password_path: str = "/mot-de-passe/oubli"
    household_path: str = "/entourage"
    # Where a family enrols a child once its file is validated, and where it downloads an
    # enrolment's certificat d'inscription ({enrolment_id} is the enrolment's).
    enrolment_path: str = "/inscription-scolaire"
    certificate_path: str = "/inscription-scolaire/{enrolment_id}/certificat"

    # A delivery being sent is leased to one process; a process killed -9 mid-send leaves a
    # lease that another process may take over once it expires. Longer than one SMTP attempt.
    delivery_lease_s: float = 15.0
    # Events older than this are not emailed (a new consumer group reading a topic from the
    # start must not send months-old welcomes); they are logged as failed with a reason.
    max_event_age_hours: float = 72.0

    # The daily digest of overdue files (DossierOverdue from insights): one email to the Service's
    # shared mailbox, from this hour (Paris time), checked this often.
    service_mailbox: str = "service-scolaire@montclair-sur-loire.fr"
    digest_hour: int = 7
    digest_check_interval_s: float = 300.0
    queue_path: str = "/agents/dossiers"
    dashboard_path: str = "/agents/tableau-de-bord"

    def portal_url(self, path: str = "/") -> str:
        return self.public_base_url.rstrip("/") + path
