"""Failures a page request can end with, rendered as a French error page (never a stack trace)."""

from __future__ import annotations


class PageError(Exception):
    """An error shown to the user as a page: its HTTP status, a title and what to do next."""

    status_code: int = 500
    title: str = "Erreur"
    message: str = "Une erreur inattendue s'est produite. Veuillez réessayer plus tard."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message is not None:
            self.message = message


class BadForm(PageError):
    status_code = 400
    title = "Formulaire non valide"
    message = "Le formulaire envoyé n'a pas pu être lu. Revenez à la page précédente et réessayez."
