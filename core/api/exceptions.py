"""Errors are JSON always: DRF's shape for API errors, and JSON for Django's own 400/404/500.

The database away (refused, restarting, a connection broken mid-request) is a 503 with Retry-After, never a 500,
in API views (`exception_handler`) and in every other view or middleware (`json_server_error`, Django's 500
handler, which sees the exception being handled). Django drops a connection that failed at the end of the
request (and CONN_HEALTH_CHECKS checks a reused one at the start of the next), so the next request connects again.
"""

import logging
import sys

import psycopg
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.rules import RuleViolation, StateConflict

logger = logging.getLogger(__name__)

# What "the database is away" looks like: Django's wrapped errors, and psycopg's own from code that talks to it
# directly. (OperationalError also covers deadlocks, serialization failures and cancelled statements: "try again"
# is the right answer to those too.)
DATABASE_AWAY: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, psycopg.OperationalError,
                                                  psycopg.InterfaceError)
RETRY_AFTER_SECONDS = 5
UNAVAILABLE = {"detail": "The service is unavailable for a moment (its database did not answer); try again shortly."}


def _database_away(exc: BaseException, path: str) -> None:
    logger.warning("503 for %s: the database is unavailable (%s: %s)", path, exc.__class__.__name__,
                   str(exc).strip().splitlines()[0] if str(exc).strip() else "")


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This state change is not allowed."
    default_code = "conflict"


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The object has changed since you read it (stale If-Match)."
    default_code = "precondition_failed"


def exception_handler(exc, context):
    if isinstance(exc, DATABASE_AWAY):
        request = context.get("request")
        _database_away(exc, getattr(request, "path", "?"))
        return Response(UNAVAILABLE, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "Request body is too large."}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, RuleViolation):
        return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, StateConflict):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, SuspiciousOperation):
        return Response({"detail": "Bad request."}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in API view", exc_info=exc)
        return Response({"detail": "Internal server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response.status_code = status.HTTP_401_UNAUTHORIZED
        response["WWW-Authenticate"] = 'Token realm="api"'
    return response


def json_bad_request(request, exception=None):
    return JsonResponse({"detail": "Bad request."}, status=400)


def json_permission_denied(request, exception=None):
    return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)


def json_not_found(request, exception=None):
    return JsonResponse({"detail": "Not found."}, status=404)


def json_server_error(request):
    exc = sys.exception()  # the exception Django is handling (a view's, or a middleware's)
    if isinstance(exc, DATABASE_AWAY):
        _database_away(exc, request.path)
        response = JsonResponse(UNAVAILABLE, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return JsonResponse({"detail": "Internal server error."}, status=500)
