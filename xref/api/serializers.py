"""Cross-referencing's runs, matches and decisions (API.md § Cross-referencing): parsing and presentation only;
every write is a call of `xref.services`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Agency, User
from core import policy
from core.api.fields import EntityRefField
from core.api.serializers import BASE_READ_ONLY, AgencyOwnedSerializer, BaseSerializer
from xref.models import DeconflictionHit, Match, MatchStatus, XrefRun


class RunCaseField(serializers.PrimaryKeyRelatedField):
    """A live case of the caller's agency that the caller sees; any other id is a 400 on `case`."""

    default_error_messages = {"does_not_exist": 'No case with id "{pk_value}" is available here.'}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(pk_field=serializers.UUIDField(), **kwargs)

    def get_queryset(self) -> Any:
        user = self.context["request"].user
        return policy.cases_visible(user).filter(agency_id=user.agency_id, archived=False)


class XrefRunSerializer(AgencyOwnedSerializer):
    """A full pass over an agency's records (or a case's parties), split into parts that workers share."""

    case = RunCaseField(required=False, allow_null=True,
                        help_text="Cross-reference only this case's parties (a case of your agency); "
                                  "omitted: every record of your agency")
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username",
                                                                                   read_only=True)
    progress = serializers.FloatField(read_only=True, min_value=0, max_value=1, help_text="Parts done over parts, 0-1")

    class Meta:
        model = XrefRun
        fields = [*BASE_READ_ONLY, "agency", "case", "status", "progress", "started_at", "finished_at", "candidates",
                  "matches", "error", "created_by"]
        read_only_fields = [field for field in fields if field != "case"]


@extend_schema_field({"type": "object", "additionalProperties": {"type": "number"},
                      "example": {"name": 0.92, "birth_date": 1.0}})
class FeaturesField(serializers.JSONField):
    """Each compared feature's similarity, 0-1."""


class MatchSerializer(BaseSerializer):
    """Two records scored as possibly the same real-world person or organisation, and the decision on them."""

    left = EntityRefField(read_only=True)
    right = EntityRefField(read_only=True)
    score = serializers.FloatField(read_only=True, min_value=0, max_value=1,
                                   help_text="The probability that both records are the same, 0-1")
    features = FeaturesField(read_only=True)
    decided_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username",
                                                                                  read_only=True)

    class Meta:
        model = Match
        fields = [*BASE_READ_ONLY, "left", "right", "score", "features", "explanation", "status", "decided_by",
                  "decided_at", "note"]
        read_only_fields = fields


class DecisionSerializer(BaseSerializer):
    """`POST /xref/matches/{id}/decision/`: `pending` undoes an earlier decision. Parsing only: the decision's
    rules (`xref.rules`) are checked by `match_decide`."""

    decision = serializers.ChoiceField(choices=MatchStatus.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)

    class Meta:
        model = Match
        fields = ["decision", "note"]


class OtherAgencySerializer(serializers.ModelSerializer):
    """The agency that holds the matching record: whom to call about it."""

    contact = serializers.CharField(read_only=True, help_text="The desk and phone to call about the hit")

    class Meta:
        model = Agency
        fields = ["code", "name", "contact"]
        read_only_fields = fields


class DeconflictionHitSerializer(AgencyOwnedSerializer):
    """Another agency holds a record matching one of yours: your record, that agency and whom to call there, the
    score. Nothing of the other agency's record."""

    entity = EntityRefField(read_only=True, help_text="Your own record")
    other_agency = OtherAgencySerializer(read_only=True)
    score = serializers.FloatField(read_only=True, min_value=0, max_value=1,
                                   help_text="The probability that both records are the same, 0-1")

    class Meta:
        model = DeconflictionHit
        fields = ["id", "created_at", "updated_at", "version", "agency", "entity", "other_agency", "score"]
        read_only_fields = fields
