"""How S3Store's failures become ``base.py`` errors: ``map_error``.

One of the modules under backend/s3*.py, the only ones that import
boto3/botocore. Pure: no state, no I/O. The server's error code and HTTP
status decide; connection failures become UnreachableError (could not connect)
or TransientError (reset/timeout after connecting); missing credentials
AccessDeniedError; a malformed request InvalidRequestError.
"""

from __future__ import annotations

import botocore.exceptions as bce

try:  # urllib3 is a botocore dependency; its errors may escape while streaming a body
    from urllib3.exceptions import HTTPError as _Urllib3Error
except ImportError:  # pragma: no cover
    _Urllib3Error = OSError  # type: ignore[misc, assignment]

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

_NOT_FOUND_CODES = {"NoSuchKey", "NoSuchUpload", "NotFound", "404", "NoSuchVersion"}
_BUCKET_CODES = {"NoSuchBucket"}
_DENIED_CODES = {
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
    "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AccountProblem", "403",
}
_PRECONDITION_CODES = {"PreconditionFailed", "412"}
_TRANSIENT_CODES = {
    "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling",
    "ThrottlingException", "RequestLimitExceeded", "TooManyRequests", "OperationAborted",
    "ConditionalRequestConflict", "500", "502", "503", "504",
}
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


def map_error(exc: BaseException, what: str = "") -> StoreError:
    """The StoreError for a botocore/urllib3 exception; ``what`` names the request."""
    prefix = f"{what}: " if what else ""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, bce.ClientError):
        return _client_error(exc, prefix)
    # Could not open a connection at all (refused, DNS, connect timeout, TLS, proxy).
    if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ConnectionError)):
        return UnreachableError(f"{prefix}{exc}", code=type(exc).__name__)
    # Connected, then the exchange broke (reset, read timeout, truncated body).
    if isinstance(
        exc,
        (
            bce.ReadTimeoutError, bce.ConnectionClosedError, bce.ResponseStreamingError,
            bce.IncompleteReadError, bce.HTTPClientError, _Urllib3Error, ConnectionError, TimeoutError,
        ),
    ):
        return TransientError(f"{prefix}{exc}", code=type(exc).__name__)
    if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError, bce.CredentialRetrievalError)):
        return AccessDeniedError(f"{prefix}no usable AWS credentials: {exc}", code=type(exc).__name__)
    if isinstance(exc, (bce.ParamValidationError, bce.ProfileNotFound, bce.InvalidRegionError)):
        return InvalidRequestError(f"{prefix}{exc}", code=type(exc).__name__)
    if isinstance(exc, bce.BotoCoreError):
        return StoreError(f"{prefix}{exc}", code=type(exc).__name__)
    return StoreError(f"{prefix}{type(exc).__name__}: {exc}")


def _client_error(exc: bce.ClientError, prefix: str) -> StoreError:
    """The server answered with an error: its code, then its HTTP status, decide."""
    err = exc.response.get("Error", {}) or {}
    code = str(err.get("Code", "") or "")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    msg = f"{prefix}{code or status} {err.get('Message', '') or ''}".rstrip()
    if code in _BUCKET_CODES:
        return BucketNotFoundError(msg, code=code)
    if code == "InvalidObjectState":
        return ArchivedError(msg, code=code, storage_class=str(err.get("StorageClass", "") or ""))
    if code in _NOT_FOUND_CODES or status == 404:
        return NotFoundError(msg, code=code)
    if code in _PRECONDITION_CODES or status == 412:
        return PreconditionFailedError(msg, code=code)
    if code in _DENIED_CODES or status == 403:
        return AccessDeniedError(msg, code=code)
    if code in _TRANSIENT_CODES or status in _TRANSIENT_STATUS or status >= 500:
        return TransientError(msg, code=code)
    return InvalidRequestError(msg, code=code)
