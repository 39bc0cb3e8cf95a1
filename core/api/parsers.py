"""What request bodies the API takes: JSON everywhere (`DEFAULT_PARSER_CLASSES`), multipart where a file is uploaded.

A form-encoded or multipart body sent to a JSON operation is a 415 (JSON, as every error), and the schema advertises
`application/json` alone there: a client generated from it has one body type per operation.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser, JSONParser, MultiPartParser
from rest_framework.settings import api_settings


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "payload_too_large"


class LimitedJSONParser(JSONParser):
    """JSON parser that refuses bodies over API_MAX_JSON_BODY before reading them."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = settings.API_MAX_JSON_BODY
        if request is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise PayloadTooLarge(f"Request body is {length} bytes; the limit is {limit}.")
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc


class UploadParsersMixin:
    """A viewset whose `upload_actions` take a file: multipart on those actions alone, JSON on every other.

    A property rather than `get_parsers`: the browsable API reads `parser_classes` for the form of each method it
    renders (with `action` set to that method's), so an upload gets a file form and an edit the JSON one. Before
    DRF sets `action` (while it builds the request with these parsers) the action is read from the method.
    """

    upload_actions: tuple[str, ...] = ("create",)
    action_map: dict[str, str]

    if TYPE_CHECKING:  # the attribute APIView declares, computed here
        parser_classes: Sequence[type[BaseParser]]
    else:

        @property
        def parser_classes(self) -> list[type[BaseParser]]:
            action = getattr(self, "action", None)
            request = getattr(self, "request", None)
            if action is None and request is not None:
                action = self.action_map.get(request.method.lower())
            if action in self.upload_actions:
                return [MultiPartParser]
            return list(api_settings.DEFAULT_PARSER_CLASSES)
