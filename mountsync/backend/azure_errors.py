"""How AzureStore's failures become ``base.py`` errors: ``map_error`` (pure).

With ``backend/azure.py``, the only modules that import the Azure SDK. The service's
error code, then the HTTP status decide. A condition that failed is 412 (If-Match) or,
for If-None-Match: * on a blob that exists, 409 BlobAlreadyExists: both are
PreconditionFailedError when the request carried a condition (``conditional``).
Could not connect: UnreachableError; a reset or timeout after connecting: TransientError.
"""

from __future__ import annotations

import azure.core.exceptions as ace

from .base import (
    AccessDeniedError,
    ArchivedError,
    BucketNotFoundError,
    InvalidRequestError,
    NotFoundError,
    PreconditionFailedError,
    StoreError,
    TransientError,
    UnreachableError,
)

_BUCKET_CODES = {"ContainerNotFound", "ContainerBeingDeleted", "ContainerDisabled"}
_ARCHIVE_CODES = {"BlobArchived", "BlobBeingRehydrated"}
_EXISTS_CODES = {"BlobAlreadyExists"}
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


def _code(exc: ace.HttpResponseError) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def map_error(exc: BaseException, what: str = "", *, conditional: bool = False) -> StoreError:
    """``exc`` raised by the Azure SDK during ``what`` as a StoreError."""
    prefix = f"{what}: " if what else ""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, ace.ServiceRequestError):  # the request could not be sent
        return UnreachableError(f"{prefix}{exc}", code=type(exc).__name__)
    if isinstance(exc, ace.ServiceResponseError):  # sent, no usable answer
        return TransientError(f"{prefix}{exc}", code=type(exc).__name__)
    if isinstance(exc, ace.ClientAuthenticationError):
        return AccessDeniedError(f"{prefix}{_first_line(exc)}", code=_code(exc) or "AuthenticationFailed")
    if isinstance(exc, ace.HttpResponseError):
        code, status = _code(exc), int(getattr(exc, "status_code", 0) or 0)
        msg = f"{prefix}{code or status} {_first_line(exc)}".rstrip()
        if code in _BUCKET_CODES:
            return BucketNotFoundError(msg, code=code)
        if code in _ARCHIVE_CODES:
            return ArchivedError(msg, code=code, storage_class="Archive")
        if status == 404:
            return NotFoundError(msg, code=code)
        if status == 412 or (conditional and code in _EXISTS_CODES):
            return PreconditionFailedError(msg, code=code)
        if status in (401, 403):
            return AccessDeniedError(msg, code=code)
        if status in _TRANSIENT_STATUS:
            return TransientError(msg, code=code)
        return InvalidRequestError(msg, code=code)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return TransientError(f"{prefix}{exc}", code=type(exc).__name__)
    if isinstance(exc, ace.AzureError):
        return StoreError(f"{prefix}{exc}", code=type(exc).__name__)
    return StoreError(f"{prefix}{type(exc).__name__}: {exc}", code=type(exc).__name__)


def _first_line(exc: BaseException) -> str:
    return (str(getattr(exc, "message", "") or exc).strip().splitlines() or [""])[0]
