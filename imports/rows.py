"""Checking file rows with a serializer's own fields and rules, at import speed.

A DRF serializer checks one request body; run per row of a file it costs about a millisecond (the
fields' whole validation machinery, for every field of the resource, each time). An import checks every
row with the very same field objects, validate_<field> methods and `validate()`, but:

- it only visits the columns a row has (plus the fields that are required or have a default);
- fields whose answer depends on the value alone and whose values repeat (countries, currencies, HS codes,
  choices, dates, booleans, slugs of related records) are asked once per distinct value and the answer,
  or the error, is remembered for the job.

So every accepted value and every error message is the field's own.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable
from typing import Any, cast

from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
)
from rest_framework import serializers
from rest_framework.fields import SkipField, empty
from rest_framework.settings import api_settings
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from core.api.serializers import _contains_nul
from core.api.validation import CountryField, CurrencyField, HSCodeField

MEMO_LIMIT = 50_000  # distinct values remembered per field; past it values are checked every time
_REPEATING = (CountryField, CurrencyField, HSCodeField, serializers.ChoiceField, serializers.DateField,
              serializers.BooleanField, serializers.SlugRelatedField)
NUL_MESSAGE = "Null characters are not allowed."

Errors = dict[str, Any]  # a DRF error detail: field → messages (or nested details)


def _remembered(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    answers: dict[Any, tuple[bool, Any]] = {}

    def remembered(value: Any) -> Any:
        if not isinstance(value, str):
            return check(value)
        answer = answers.get(value)
        if answer is None:
            try:
                answer = (True, check(value))
            except serializers.ValidationError as exc:
                answer = (False, exc.detail)
            if len(answers) < MEMO_LIMIT:
                answers[value] = answer
        if answer[0]:
            return answer[1]
        raise serializers.ValidationError(answer[1])

    return remembered


def _check_of(field: serializers.Field) -> Callable[[Any], Any]:
    if isinstance(field, _REPEATING):
        return _remembered(field.run_validation)
    if isinstance(field, serializers.ListField) and isinstance(field.child, _REPEATING):
        item = _remembered(field.child.run_validation)

        def each(value: Any) -> Any:
            if not isinstance(value, list) or not value:
                return field.run_validation(value)  # the list field's own answer for anything unusual
            checked: list[Any] = []
            errors: dict[Any, Any] = {}
            for index, one in enumerate(value):
                try:
                    checked.append(item(one))
                except serializers.ValidationError as exc:
                    errors[index] = exc.detail
            if errors:
                raise serializers.ValidationError(errors)
            field.run_validators(checked)
            return checked

        return each
    if _plain_text(field):
        limit, check = cast(serializers.CharField, field).max_length, field.run_validation

        def text(value: Any) -> Any:
            # What CharField accepts with its usual validators: trimmed, not blank, short enough; ASCII holds
            # no surrogate (and a NUL was refused before). Anything else: the field's own answer.
            if type(value) is str:
                trimmed = value.strip()
                if trimmed and trimmed.isascii() and (limit is None or len(trimmed) <= limit):
                    return trimmed
            return check(value)

        return text
    if _plain_decimal(field):
        return _decimal(cast(serializers.DecimalField, field))
    return field.run_validation


def _plain_decimal(field: serializers.Field) -> bool:
    """A DecimalField exactly, with max_digits and decimal_places, and no validators but its bounds'."""
    return (type(field) is serializers.DecimalField and not field.localize and field.max_digits is not None
            and field.decimal_places is not None
            and all(type(v) in (MinValueValidator, MaxValueValidator) for v in field.validators)
            and len(field.validators) == (field.min_value is not None) + (field.max_value is not None))


def _decimal(field: serializers.DecimalField) -> Callable[[Any], Any]:
    """What DecimalField accepts, on a short path for plain numerals that fit: at most max_whole_digits
    digits before the point and decimal_places after it (so no precision check can fail and quantising
    only pads). Anything else, and every error message, is the field's own."""
    digits, places = cast(int, field.max_digits), cast(int, field.decimal_places)
    whole = digits - places
    numeral = re.compile(rf"[+-]?\d{{1,{whole}}}(?:\.\d{{1,{places}}})?" if places else rf"[+-]?\d{{1,{whole}}}")
    exponent = decimal.Decimal(1).scaleb(-places)
    context = decimal.Context(prec=digits)
    check, low, high = field.run_validation, field.min_value, field.max_value

    def number(value: Any) -> Any:
        if type(value) is str:
            text = value.strip()
            if numeral.fullmatch(text):
                quantised = decimal.Decimal(text).quantize(exponent, rounding=field.rounding, context=context)
                if (low is None or quantised >= low) and (high is None or quantised <= high):
                    return quantised
        return check(value)

    return number


_TEXT_VALIDATORS = (MaxLengthValidator, ProhibitNullCharactersValidator, ProhibitSurrogateCharactersValidator)


def _plain_text(field: serializers.Field) -> bool:
    """A CharField exactly, trimming, with no validators but the usual length and character ones."""
    return (type(field) is serializers.CharField and field.trim_whitespace and field.min_length is None
            and all(type(v) in _TEXT_VALIDATORS for v in field.validators)
            and sum(type(v) is MaxLengthValidator for v in field.validators) == (field.max_length is not None))


class RowChecker:
    """Validated data of one row, or its errors, as `serializer.is_valid()` would give them."""

    def __init__(self, serializer: serializers.Serializer) -> None:
        self.serializer = serializer
        writable = {name: f for name, f in serializer.fields.items() if not f.read_only}
        self.fields = writable
        self.checks = {name: _check_of(f) for name, f in writable.items()}
        self.methods = {name: getattr(serializer, f"validate_{name}", None) for name in writable}
        # where a field's value goes in the validated data, for the usual source of one attribute
        self.targets = {name: f.source_attrs[0] if len(f.source_attrs) == 1 else None for name, f in writable.items()}
        self.when_absent = [name for name, f in writable.items()
                            if f.required or f.default is not empty]

    def check(self, data: dict[str, Any]) -> tuple[dict[str, Any] | None, Errors]:
        self.serializer.initial_data = data  # a field's check may read a sibling's raw value (a number's country)
        attrs: dict[str, Any] = {}
        errors: Errors = {}
        checks, fields = self.checks, self.fields
        for name, value in data.items():
            check = checks.get(name)
            if check is None:
                errors[name] = ["Unknown field."]
                continue
            if ("\x00" in value) if type(value) is str else _contains_nul(value):
                errors[name] = [NUL_MESSAGE]
                continue
            self._take(name, check, value, attrs, errors)
        for name in self.when_absent:
            if name not in data:  # its default, or the field's own "required" error
                self._take(name, fields[name].run_validation, empty, attrs, errors)
        if errors:
            return None, errors
        try:
            return self.serializer.validate(attrs), errors
        except serializers.ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {api_settings.NON_FIELD_ERRORS_KEY: exc.detail}
            return None, detail

    def _take(self, name: str, check: Callable[[Any], Any], value: Any, attrs: dict[str, Any], errors: Errors) -> None:
        """One field's value checked (then by the serializer's validate_<field>) into attrs, or its errors."""
        try:
            checked = check(value)
            method = self.methods[name]
            if method is not None:
                checked = method(checked)
        except serializers.ValidationError as exc:
            errors[name] = exc.detail if isinstance(exc.detail, list | dict) else [exc.detail]
            return
        except SkipField:
            return
        target = self.targets[name]
        if target is not None:
            attrs[target] = checked
        else:
            self._set(attrs, self.fields[name], checked)

    @staticmethod
    def _set(attrs: dict[str, Any], field: serializers.Field, value: Any) -> None:
        *path, last = field.source_attrs  # a dotted source writes into nested dicts, as DRF does
        for part in path:
            attrs = attrs.setdefault(part, {})
        attrs[last] = value
