"""HTTP routes of the identity service. Thin: validate input, call the use cases, map outcomes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, EmailStr, Field

from services.identity.domain import Role
from services.identity.usecases import (
    AlreadyExists,
    Deactivated,
    IdentityError,
    IdentityService,
    InvalidCredentials,
    LinkExpired,
    LinkUnknown,
    LinkUsed,
    NotActivated,
    PolicyViolation,
    StaffNotFound,
    TokenPair,
    TooManyAttempts,
)
from services.kernel.auth import Principal, require_role

router = APIRouter()

Password = Annotated[str, Field(min_length=1, max_length=256)]
Token = Annotated[str, Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


class Message(BaseModel):
    detail: str


class Problem(BaseModel):
    detail: str
    can_resend: bool | None = None
    attempts_left: int | None = Field(
        default=None, description="A wrong login: attempts left for this address in the window (then 429).")


class RegisterRequest(BaseModel):
    email: EmailStr
    password: Password
    display_name: Annotated[str, Field(min_length=1, max_length=100, description="Prénom et nom")]


class EmailRequest(BaseModel):
    email: EmailStr


class TokenRequest(BaseModel):
    token: Token


class LoginRequest(BaseModel):
    email: EmailStr
    password: Password


class RefreshRequest(BaseModel):
    refresh_token: Token


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int

    @classmethod
    def of(cls, pair: TokenPair) -> TokenResponse:
        return cls(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


class ResetConfirmRequest(BaseModel):
    token: Token
    new_password: Password


class ChangePasswordRequest(BaseModel):
    current_password: Password
    new_password: Password


class DeleteAccountRequest(BaseModel):
    password: Password


class Profile(BaseModel):
    account_id: str
    email: str
    display_name: str
    role: Role


class StaffRequest(BaseModel):
    email: EmailStr
    display_name: Annotated[str, Field(min_length=1, max_length=100)]
    role: Role


class Created(BaseModel):
    account_id: str


def service(request: Request) -> IdentityService:
    return request.app.state.identity


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def correlation(request: Request) -> str | None:
    return getattr(request.state, "correlation_id", None)


Service = Annotated[IdentityService, Depends(service)]

_STATUS: list[tuple[type[IdentityError], int]] = [
    (PolicyViolation, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (InvalidCredentials, status.HTTP_401_UNAUTHORIZED),
    (NotActivated, status.HTTP_403_FORBIDDEN),
    (LinkExpired, status.HTTP_410_GONE),
    (LinkUsed, status.HTTP_409_CONFLICT),
    (LinkUnknown, status.HTTP_400_BAD_REQUEST),
    (AlreadyExists, status.HTTP_409_CONFLICT),
    (TooManyAttempts, status.HTTP_429_TOO_MANY_REQUESTS),
    (Deactivated, status.HTTP_403_FORBIDDEN),
    (StaffNotFound, status.HTTP_404_NOT_FOUND),
]


def identity_error_response(exc: IdentityError) -> JSONResponse:
    code = next(c for kind, c in _STATUS if isinstance(exc, kind))
    body: dict[str, Any] = {"detail": exc.message}
    if "can_resend" in exc.details:
        body["can_resend"] = exc.details["can_resend"]
    if "attempts_left" in exc.details:
        body["attempts_left"] = exc.details["attempts_left"]
    if "field" in exc.details:
        body["errors"] = [{"loc": ["body", exc.details["field"]], "msg": exc.message, "type": "value_error"}]
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, TooManyAttempts) else None
    return JSONResponse(body, status_code=code, headers=headers)


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem} for code in codes}


@router.post(
    "/auth/register", status_code=202, response_model=Message, tags=["inscription"],
    summary="Create a family account (the answer is the same whether or not the email is known)",
    responses=_responses(422, 429),
)
async def register(body: RegisterRequest, request: Request, identity: Service) -> Message:
    return Message(
        detail=await identity.register(
            body.email, body.password, body.display_name, client=client_address(request), correlation_id=correlation(request)
        )
    )


@router.post(
    "/auth/activation", response_model=Message, tags=["inscription"],
    summary="Activate an account with the token from the emailed link", responses=_responses(400, 409, 410),
)
async def activate(body: TokenRequest, request: Request, identity: Service) -> Message:
    await identity.activate(body.token, correlation_id=correlation(request))
    return Message(detail="Votre espace est activé. Vous pouvez maintenant vous connecter.")


@router.post(
    "/auth/activation/resend", status_code=202, response_model=Message, tags=["inscription"],
    summary="Send a new activation link (earlier links stay valid)", responses=_responses(429),
)
async def resend_activation(body: EmailRequest, request: Request, identity: Service) -> Message:
    return Message(detail=await identity.resend_activation(body.email, correlation_id=correlation(request)))


@router.post(
    "/auth/login", response_model=TokenResponse, tags=["session"],
    summary="Log in: a short-lived access token and a rotating refresh token", responses=_responses(401, 403, 429),
)
async def login(body: LoginRequest, request: Request, identity: Service) -> TokenResponse:
    return TokenResponse.of(await identity.login(body.email, body.password, client=client_address(request)))


@router.post(
    "/auth/refresh", response_model=TokenResponse, tags=["session"],
    summary="Exchange a refresh token for a new pair (reusing one revokes its chain)", responses=_responses(401),
)
async def refresh(body: RefreshRequest, identity: Service) -> TokenResponse:
    return TokenResponse.of(await identity.refresh(body.refresh_token))


@router.post("/auth/logout", status_code=204, tags=["session"], summary="Log out: revoke the refresh token's chain")
async def logout(body: RefreshRequest, identity: Service) -> Response:
    await identity.logout(body.refresh_token)
    return Response(status_code=204)


@router.post(
    "/auth/password-reset", status_code=202, response_model=Message, tags=["mot de passe"],
    summary="Email a password reset link (same answer whether or not the account exists)", responses=_responses(429),
)
async def request_reset(body: EmailRequest, request: Request, identity: Service) -> Message:
    return Message(detail=await identity.request_reset(body.email, correlation_id=correlation(request)))


@router.post(
    "/auth/password-reset/confirm", response_model=Message, tags=["mot de passe"],
    summary="Choose a new password with the token from the emailed link", responses=_responses(400, 409, 410, 422),
)
async def confirm_reset(body: ResetConfirmRequest, request: Request, identity: Service) -> Message:
    await identity.confirm_reset(body.token, body.new_password, correlation_id=correlation(request))
    return Message(detail="Votre mot de passe a été modifié. Vous pouvez vous connecter.")


@router.get("/.well-known/jwks.json", tags=["jetons"], summary="Public keys that verify access tokens")
async def jwks(request: Request) -> dict[str, Any]:
    return request.app.state.identity.keyring.jwks()


FamilyOrStaff = Annotated[Principal, Depends(require_role("family", "agent", "admin"))]


@router.get("/me", response_model=Profile, tags=["mon compte"], summary="The logged-in account")
async def me(principal: FamilyOrStaff, identity: Service) -> Profile | JSONResponse:
    account = await identity.profile(principal.account_id)
    if account is None:
        return JSONResponse({"detail": "Ce compte n'existe plus."}, status_code=404)
    return Profile(account_id=account["_id"], email=account["email"], display_name=account["display_name"], role=account["role"])


@router.post(
    "/me/password", status_code=204, tags=["mon compte"], summary="Change my password (logs out every session)",
    responses=_responses(401, 422, 429),
)
async def change_password(body: ChangePasswordRequest, principal: FamilyOrStaff, request: Request, identity: Service) -> Response:
    await identity.change_password(
        principal.account_id, body.current_password, body.new_password, client=client_address(request),
        correlation_id=correlation(request),
    )
    return Response(status_code=204)


@router.post(
    "/me/delete", status_code=204, tags=["mon compte"],
    summary="Delete my account and personal data (RGPD); every service is told", responses=_responses(401, 429),
)
async def delete_account(body: DeleteAccountRequest, principal: FamilyOrStaff, request: Request, identity: Service) -> Response:
    await identity.delete_account(
        principal.account_id, body.password, client=client_address(request), correlation_id=correlation(request))
    return Response(status_code=204)


@router.post(
    "/admin/accounts", status_code=201, response_model=Created, tags=["administration"],
    summary="Create an agent or admin account (admins only); its owner sets a password from an email",
    responses=_responses(401, 403, 409, 422),
)
async def create_staff(
    body: StaffRequest, principal: Annotated[Principal, Depends(require_role("admin"))], request: Request, identity: Service
) -> Created:
    return Created(
        account_id=await identity.create_staff(body.email, body.display_name, body.role, correlation_id=correlation(request))
    )


# ---- staff directory -------------------------------------------------------------------------


class StaffMember(BaseModel):
    account_id: str
    display_name: str
    email: str
    role: Role
    active: bool = Field(description="False once an admin deactivated it (no login; its name stays in histories)")


def _member(account: dict[str, Any]) -> StaffMember:
    return StaffMember(account_id=account["_id"], display_name=account.get("display_name") or "", email=account.get("email") or "",
                       role=account["role"], active=account.get("state") == "active")


Staff = Annotated[Principal, Depends(require_role("agent", "admin"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]


@router.get("/staff", response_model=list[StaffMember], tags=["administration"],
            summary="Agents and admins with their names (agents read it to name who did what)", responses=_responses(401, 403))
async def staff(principal: Staff, identity: Service) -> list[StaffMember]:
    return [_member(a) for a in await identity.staff_directory()]


@router.post("/admin/staff/{account_id}/deactivate", response_model=StaffMember, tags=["administration"],
             summary="Deactivate an agent (admins only): no more login, sessions revoked, history kept",
             responses=_responses(401, 403, 404, 422))
async def deactivate(account_id: str, principal: Admin, identity: Service) -> StaffMember:
    return _member(await identity.set_staff_active(account_id, False, by=principal.account_id))


@router.post("/admin/staff/{account_id}/reactivate", response_model=StaffMember, tags=["administration"],
             summary="Reactivate an agent (admins only)", responses=_responses(401, 403, 404, 422))
async def reactivate(account_id: str, principal: Admin, identity: Service) -> StaffMember:
    return _member(await identity.set_staff_active(account_id, True, by=principal.account_id))
