from django_filters import rest_framework as filters

from accounts.choices import Clearance
from cases.choices import CaseStatus, Priority
from cases.models import Case, CaseParty
from core.api.filters import BaseFilterSet, several


class CaseFilterSet(BaseFilterSet):
    q_fields = ("reference", "title", "summary")

    status = filters.MultipleChoiceFilter(choices=CaseStatus.choices)
    priority = filters.MultipleChoiceFilter(choices=Priority.choices)
    classification = filters.MultipleChoiceFilter(choices=Clearance.choices)
    unit = filters.CharFilter(field_name="unit__code")
    lead = filters.CharFilter(field_name="lead__username")
    commodity = filters.CharFilter(field_name="commodities__code", distinct=True)
    opened_after = filters.DateFilter(field_name="opened_on", lookup_expr="gte")
    opened_before = filters.DateFilter(field_name="opened_on", lookup_expr="lte")
    person = filters.UUIDFilter(method="filter_party", label="Person id (a party of the case)")
    organization = filters.UUIDFilter(method="filter_party", label="Organization id (a party of the case)")

    @several
    def filter_party(self, queryset, name, value):
        return queryset.filter(pk__in=CaseParty.objects.filter(entity_id__in=value, entity__type=name,
                                                               archived=False).values("case_id"))

    class Meta:
        model = Case
        fields: list[str] = []
