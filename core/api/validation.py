"""Serializer fields for the contract's value formats: countries, currencies, HS codes."""

from __future__ import annotations

import re
from typing import Any

import pycountry
from rest_framework import serializers

_HS = re.compile(r"^\d{2,10}$")


class CountryField(serializers.CharField):
    """ISO 3166-1 alpha-2, upper-cased on input (`cn` → `CN`); anything else is a 400."""

    default_error_messages = {"invalid_country": "{value!r} is not an ISO 3166-1 alpha-2 country code."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 2)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data).strip().upper()
        if value and pycountry.countries.get(alpha_2=value) is None:
            self.fail("invalid_country", value=value)
        return value


class CurrencyField(serializers.CharField):
    """ISO 4217, upper-cased on input."""

    default_error_messages = {"invalid_currency": "{value!r} is not an ISO 4217 currency code."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data).strip().upper()
        if value and pycountry.currencies.get(alpha_3=value) is None:
            self.fail("invalid_currency", value=value)
        return value


def normalize_hs_code(value: str) -> str:
    """Digits only: `8110.10` and `8110 10` become `811010`."""
    return re.sub(r"[\s.]", "", value or "")


class HSCodeField(serializers.CharField):
    """Harmonized System code: 2 to 10 digits; dots and spaces in input are dropped."""

    default_error_messages = {"invalid_hs": "{value!r} is not an HS code (2 to 10 digits, dots allowed)."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 14)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = normalize_hs_code(super().to_internal_value(data))
        if value and not _HS.match(value):
            self.fail("invalid_hs", value=value)
        return value


def percent_field(**kwargs: Any) -> serializers.DecimalField:
    """A share or purity: 0 to 100, three decimals, optional."""
    return serializers.DecimalField(max_digits=6, decimal_places=3, min_value=0, max_value=100, required=False,
                                    allow_null=True, **kwargs)


def amount_field(**kwargs: Any) -> serializers.DecimalField:
    """A sum of money (its currency is a field beside it): not negative, two decimals, optional."""
    return serializers.DecimalField(max_digits=18, decimal_places=2, min_value=0, required=False, allow_null=True,
                                    **kwargs)
