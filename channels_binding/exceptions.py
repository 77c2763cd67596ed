"""Errors a binding raises, and the one function that turns any error into a payload.

The classes reuse Django REST framework's exceptions where the protocol's codes match
DRF's (``invalid``, ``parse_error``, ``not_authenticated``, ``permission_denied``,
``not_found``, ``method_not_allowed``, ``throttled``), so code written for DRF views
raises the right thing here too.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.exceptions import (
    APIException,
    NotAuthenticated,
    NotFound,
    ParseError,
    PermissionDenied,
    Throttled,
    ValidationError,
)

logger = logging.getLogger("channels_binding")

__all__ = [
    "APIException",
    "ActionNotAllowed",
    "FrameTooLarge",
    "NotAuthenticated",
    "NotFound",
    "ParseError",
    "PermissionDenied",
    "ServerError",
    "Throttled",
    "UnknownEvent",
    "ValidationError",
    "error_payload",
]


class UnknownEvent(NotFound):
    """No binding answers this stream, or the stream has no such event."""

    default_detail = "Unknown event."
    default_code = "unknown_event"


class ActionNotAllowed(APIException):
    """The binding exists but does not offer this action (DRF's 405)."""

    status_code = 405
    default_detail = "This action is not allowed on this binding."
    default_code = "method_not_allowed"


class FrameTooLarge(APIException):
    """A frame or body larger than ``MAX_FRAME_BYTES`` (413 ``too_large``)."""

    status_code = 413
    default_detail = "Frame too large."
    default_code = "too_large"


class ServerError(APIException):
    """What a client is told of any unexpected exception (500 ``server_error``)."""

    status_code = 500
    default_detail = "Server error."
    default_code = "server_error"


def _plain(detail: Any) -> Any:
    """DRF's ``ErrorDetail`` strings, nested in lists and dicts, as plain JSON."""
    if isinstance(detail, dict):
        return {str(key): _plain(value) for key, value in detail.items()}
    if isinstance(detail, list | tuple):
        return [_plain(item) for item in detail]
    return str(detail)


def _code(exc: APIException) -> str:
    # A ValidationError's codes are per field; the frame's code is the class's.
    if isinstance(exc, ValidationError):
        return "invalid"
    # DRF's AuthenticationFailed ("authentication_failed") is a 401 like any other.
    if exc.status_code == 401:
        return "not_authenticated"
    return exc.default_code


def error_payload(exc: BaseException) -> dict[str, Any]:
    """``{"status", "code", "detail"}`` for any exception, safe to send to a client.

    Anything that is not an ``APIException`` (or one of Django's 404 and permission
    errors) is logged with its traceback and answered as a bare 500: a client never
    sees a traceback, a SQL string or a file path.
    """
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = PermissionDenied()
    if not isinstance(exc, APIException):
        logger.error("Error while handling an event", exc_info=exc)
        exc = ServerError()
    detail = _plain(exc.detail)
    if isinstance(exc, ValidationError) and isinstance(detail, list):
        detail = {drf.api_settings.NON_FIELD_ERRORS_KEY: detail}
    return {"status": exc.status_code, "code": _code(exc), "detail": detail}
