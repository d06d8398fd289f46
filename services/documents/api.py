"""HTTP routes of the documents service. Thin: validate input, call the use cases, map outcomes.

Every answer other than success is JSON ``{"detail": "<French>"}``; another family's document,
or one an agent may not read yet, is a plain 404 (its existence is never revealed)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.documents import domain
from services.documents.domain import Kind, Status
from services.documents.settings import DocumentsSettings
from services.documents.sworn import render_pdf
from services.documents.upload import MalformedUpload, UploadTooLarge, receive_form
from services.documents.usecases import (
    AccountErased,
    Conflict,
    DocumentsError,
    DocumentsService,
    Gone,
    Invalid,
    NotFound,
    TooLarge,
    Unavailable,
    Unsupported,
)
from services.kernel.auth import Principal, require_role

router = APIRouter(tags=["documents"])


class Problem(BaseModel):
    detail: str


class DocumentView(BaseModel):
    id: str
    kind: Kind
    kind_label: str
    status: Status = Field(description="pending (waiting for the virus scan), clean, infected (deleted; see reason) or quarantined (« à vérifier »: the scan could not reach its end; never opened; see reason)")
    name: str | None = Field(default=None, description="The sanitised original name, with the stored type's extension.")
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    uploaded_at: datetime | None = None
    scanned_at: datetime | None = None
    reason: str | None = Field(default=None, description="Why the document was refused (French), when infected or quarantined.")

    @classmethod
    def of(cls, d: dict[str, Any]) -> DocumentView:
        return cls(
            id=d["_id"], kind=d["kind"], kind_label=domain.KIND_LABELS[Kind(d["kind"])], status=d["status"],
            name=d.get("name"), content_type=d.get("content_type"), size=d.get("size"), sha256=d.get("sha256"),
            uploaded_at=d.get("uploaded_at"), scanned_at=d.get("scanned_at"), reason=d.get("reason"),
        )


class DocumentList(BaseModel):
    documents: list[DocumentView]


class Download(BaseModel):
    url: str = Field(description="Presigned GET on the object store; answers with Content-Disposition: attachment.")
    expires_in: int = Field(description="Seconds the link stays valid (at most 300).")
    filename: str
    content_type: str


def service(request: Request) -> DocumentsService:
    return request.app.state.documents


Service = Annotated[DocumentsService, Depends(service)]
Family = Annotated[Principal, Depends(require_role("family"))]
Anyone = Annotated[Principal, Depends(require_role("family", "agent", "admin"))]

_STATUS: list[tuple[type[DocumentsError], int]] = [
    (AccountErased, 401),
    (NotFound, 404),
    (Gone, 410),
    (Conflict, 409),
    (Unsupported, 415),
    (TooLarge, 413),
    (Invalid, 400),
    (Unavailable, 503),
]


def documents_error_response(exc: DocumentsError) -> JSONResponse:
    code = next(c for kind, c in _STATUS if isinstance(exc, kind))
    headers = {"Retry-After": "30"} if code == 503 else None
    return JSONResponse({"detail": exc.message}, status_code=code, headers=headers)


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem} for code in codes}


def correlation(request: Request) -> str | None:
    return getattr(request.state, "correlation_id", None)


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "kind"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "PDF, JPEG, PNG or HEIC/HEIF; 10 MB at most"},
                        "kind": {"type": "string", "enum": [k.value for k in Kind]},
                    },
                }
            }
        },
    }
}


@router.post(
    "/documents", status_code=201, response_model=DocumentView,
    summary="Upload a supporting document (streamed; type decided by content; HEIC converted to JPEG)",
    responses=_responses(400, 401, 413, 415, 503), openapi_extra=_UPLOAD_BODY,
)
async def upload(request: Request, principal: Family, documents: Service) -> DocumentView:
    settings: DocumentsSettings = documents.settings
    try:
        form = await receive_form(
            request.headers.get("content-type", ""), request.stream(), file_field="file",
            max_bytes=settings.max_upload_bytes, tmp_dir=settings.upload_tmp_dir,
        )
    except UploadTooLarge:
        raise TooLarge(domain.TOO_LARGE.format(max_mb=settings.max_upload_bytes // (1024 * 1024))) from None
    except MalformedUpload:
        raise Invalid(domain.BAD_FORM) from None
    kind = form.fields.get("kind", "").strip()
    if form.file is None:
        raise Invalid(domain.NO_FILE)
    if kind not in {k.value for k in Kind}:
        form.discard()
        raise Invalid(domain.BAD_KIND)
    document = await documents.upload(principal.account_id, kind, form.file, correlation_id=correlation(request))
    return DocumentView.of(document)


@router.get("/documents", response_model=DocumentList, summary="My documents, newest first, with their status",
            responses=_responses(503))
async def mine(principal: Family, documents: Service) -> DocumentList:
    return DocumentList(documents=[DocumentView.of(d) for d in await documents.mine(principal.account_id)])


@router.get("/documents/{document_id}", response_model=DocumentView, summary="A document's metadata",
            responses=_responses(404, 503))
async def metadata(document_id: str, principal: Anyone, documents: Service) -> DocumentView:
    return DocumentView.of(await documents.metadata(document_id, principal.account_id, principal.role))


@router.get(
    "/documents/{document_id}/download", response_model=Download,
    summary="A presigned download link valid at most 5 minutes (owner; agents once clean and submitted)",
    responses=_responses(404, 410, 503),
)
async def download(document_id: str, principal: Anyone, documents: Service) -> Download:
    link = await documents.download(document_id, principal.account_id, principal.role)
    return Download(url=link.url, expires_in=link.expires_in, filename=link.filename, content_type=link.content_type)


@router.delete(
    "/documents/{document_id}", status_code=204,
    summary="Delete my document (refused while it is attached to a file under review)",
    responses=_responses(404, 409, 503),
)
async def delete(document_id: str, principal: Family, request: Request, documents: Service) -> Response:
    await documents.delete(document_id, principal.account_id, correlation_id=correlation(request))
    return Response(status_code=204)


@router.get(
    "/sworn-statement", tags=["attestation"],
    summary="A pre-filled sworn statement (attestation sur l'honneur, Code de l'éducation D131-3-1) to sign and upload",
    responses={200: {"content": {"application/pdf": {}}, "description": "The PDF"}, **_responses(422)},
    response_class=Response,
)
async def sworn_statement(
    principal: Family,
    documents: Service,
    subject: Annotated[str, Query(max_length=40, description="child_identity, guardian_identity or proof_of_address")] = "",
    declarant: Annotated[str, Query(max_length=200, description="Nom et prénom de la personne qui signe")] = "",
    child: Annotated[str | None, Query(max_length=200, description="Nom et prénom de l'enfant")] = None,
    address: Annotated[str | None, Query(max_length=400, description="Adresse du domicile")] = None,
) -> Response:
    problems = domain.sworn_statement_problems(subject, declarant, child, address)
    if problems:
        return JSONResponse({"detail": " ".join(problems)}, status_code=422)
    statement = domain.sworn_statement(subject, declarant, child, address, documents.settings.town_name)
    pdf = await render_pdf(statement)
    return Response(
        pdf, media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="attestation-sur-l-honneur-{subject}.pdf"', "Cache-Control": "no-store"},
    )
