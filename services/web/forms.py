"""Reading HTML form posts (application/x-www-form-urlencoded).

Parsed here with the standard library rather than Starlette's ``request.form()``, which needs
python-multipart: the pages' forms carry a few short text fields and no file.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request

from services.web.errors import BadForm

# Our forms carry a handful of short fields; anything bigger is not one of them.
MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 20


async def read_form(request: Request, *, max_fields: int = MAX_FIELDS, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    """The posted fields (first value of each name); empty for another content type.

    The limits are the account forms'; a longer form (a household declaration, an agent's
    corrections) passes its own."""
    cached: dict[str, str] | None = getattr(request.state, "form", None)
    if cached is not None:
        return cached
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    form: dict[str, str] = {}
    if content_type == "application/x-www-form-urlencoded":
        body = await request.body()
        if len(body) > max_bytes:
            raise BadForm()
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadForm() from exc
        for name, value in pairs:
            form.setdefault(name, value)
    request.state.form = form
    return form
