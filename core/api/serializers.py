from __future__ import annotations

import copy
import weakref
from typing import TYPE_CHECKING, Any, cast

from django.utils.datastructures import MultiValueDict
from rest_framework import serializers

if TYPE_CHECKING:
    from accounts.models import Agency

BASE_READ_ONLY = ("id", "created_at", "updated_at", "version", "archived")


def _contains_nul(value: Any) -> bool:
    """Whether a NUL character is anywhere in a value: PostgreSQL can neither store nor compare one."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


# Each serializer class's fields as ModelSerializer works them out from its Meta and model (get_fields).
_BUILT_FIELDS: weakref.WeakKeyDictionary[type, dict[str, Any]] = weakref.WeakKeyDictionary()


class BaseSerializer(serializers.ModelSerializer):
    """Common fields read-only and ignored on input; a field the resource does not have is a 400."""

    def get_fields(self) -> dict[str, Any]:
        # ModelSerializer works the fields out of the model for every instance, a few milliseconds of each request;
        # they depend on the class alone, so each class's are worked out once and copied, as DRF copies the
        # declared ones. (A subclass that adapts them to its instance does so on the copy.)
        built = _BUILT_FIELDS.get(type(self))
        if built is None:
            built = _BUILT_FIELDS[type(self)] = super().get_fields()
        return copy.deepcopy(built)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            errors: dict[str, Any] = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))}
            # A NUL is refused before any field looks it up (a slug lookup would make PostgreSQL fail).
            values = cast(MultiValueDict, data).lists() if hasattr(data, "getlist") else data.items()
            errors.update({name: ["Null characters are not allowed."] for name, value in values
                           if name not in errors and _contains_nul(value)})
            if errors:
                # Name every bad field at once: the others are checked too.
                rest = [name for name in data if name not in errors]
                try:
                    super().to_internal_value(MultiValueDict({n: data.getlist(n) for n in rest})
                                              if hasattr(data, "getlist") else {n: data[n] for n in rest})
                except serializers.ValidationError as exc:
                    detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
                    errors = {**detail, **errors}
                raise serializers.ValidationError(errors)
        elif data is not None and not hasattr(data, "getlist"):
            raise serializers.ValidationError(
                {"non_field_errors": ["Expected a JSON object."]}
            )
        return super().to_internal_value(data)


class AgencyOwnedSerializer(BaseSerializer):
    """`agency` is shown as its code and always taken from the caller."""

    agency: serializers.SlugRelatedField[Agency] = serializers.SlugRelatedField(slug_field="code", read_only=True)
