"""Cross-referencing in the admin: matches with their explanation, decided one by one or in bulk, the runs, and the
deconfliction hits (read-only).

Every decision goes through `xref.services.match_decide`, as through the API (identity clusters follow, the
decision is audited); the rows and who may decide them come from `core.policy`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from core import policy
from core.admin import PolicyAdminMixin, ServiceAdmin, ServiceForm
from core.rules import RuleViolation, StateConflict

from . import rules, services
from .models import DeconflictionHit, Match, MatchStatus, XrefRun

EXPLANATION_SHOWN = 160  # characters of an explanation in the list


class ScoreFilter(admin.SimpleListFilter):
    """Score bands: `<low>-<high>` (either end open), low included, high not."""

    title = "score"
    parameter_name = "score"
    BANDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("0.9-", "0.9 and above"), ("0.7-0.9", "0.7 to 0.9"), ("0.5-0.7", "0.5 to 0.7"), ("-0.5", "below 0.5"),
    )

    def lookups(self, request, model_admin):
        return self.BANDS

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        low, sep, high = value.partition("-")
        try:
            bounds = (float(low) if low else None, float(high) if high else None)
        except ValueError:
            raise IncorrectLookupParameters(f"score: {value!r} is not a band such as 0.7-0.9") from None
        if not sep or bounds == (None, None):
            raise IncorrectLookupParameters(f"score: {value!r} is not a band such as 0.7-0.9")
        query = Q()
        if bounds[0] is not None:
            query &= Q(score__gte=bounds[0])
        if bounds[1] is not None:
            query &= Q(score__lt=bounds[1])
        return queryset.filter(query)


class DecisionForm(ServiceForm):
    """A match's page changes only its decision and note, which `match_decide` writes."""

    service_fields = frozenset({"status", "note"})
    state_field = "status"

    def check_rules(self, data: dict[str, Any]) -> None:
        if self.errors:
            return
        rules.check_decision(data.get("status"), data.get("note") or "")
        stored = self.stored()
        if stored is not None:
            rules.check_decidable(stored)


MATCH_FIELDS = ("left", "right", "entity_type", "score", "explanation", "features", "status", "note", "decided_by",
                "decided_at", "run", "archived", "id", "version", "created_at", "updated_at")


@admin.register(Match)
class MatchAdmin(ServiceAdmin):
    form = DecisionForm
    list_display = ("left", "right", "entity_type", "score_shown", "status", "explanation_shown", "decided_by",
                    "decided_at")
    list_filter = (ScoreFilter, "status", "entity_type", "archived")
    list_select_related = ("left", "right", "decided_by")
    search_fields = ("left__name", "right__name", "explanation")
    ordering = ("-score", "id")
    list_per_page = 50
    fields = MATCH_FIELDS
    readonly_fields = tuple(field for field in MATCH_FIELDS if field not in DecisionForm.service_fields)
    actions = ("confirm_selected", "reject_selected", "set_pending_selected")

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # matches are found by cross-referencing, not typed in

    @admin.display(description="score", ordering="score")
    def score_shown(self, obj: Match) -> str:
        return f"{obj.score:.2f}"

    @admin.display(description="explanation")
    def explanation_shown(self, obj: Match) -> str:
        text = obj.explanation
        return text if len(text) <= EXPLANATION_SHOWN else text[:EXPLANATION_SHOWN - 1] + "…"

    # --- one match: its page -------------------------------------------------------------------

    def update_record(self, request: HttpRequest, stored: Match, data: dict[str, Any]) -> Match:
        return services.match_decide(request.user, stored, decision=data["status"], note=data.get("note") or "")

    # --- many matches: the bulk actions --------------------------------------------------------

    def decide(self, request: HttpRequest, queryset: QuerySet, decision: str) -> None:
        """`decision` on each selected match the user may decide, one transaction each; a refused one is named."""
        decided = 0
        for match in policy.writable(request.user, queryset).select_related("left", "right"):
            try:
                with transaction.atomic():
                    locked = Match.objects.select_for_update(of=("self",)).get(pk=match.pk)
                    services.match_decide(request.user, locked, decision=decision)
                decided += 1
            except (RuleViolation, StateConflict) as exc:
                self.message_user(request, f"{match}: {exc}", messages.WARNING)
        self.message_user(request, f"{decided} match(es) set to {decision}.")

    @admin.action(description="Confirm the selected matches (same real-world entity)", permissions=["change"])
    def confirm_selected(self, request, queryset) -> None:
        self.decide(request, queryset, MatchStatus.CONFIRMED)

    @admin.action(description="Reject the selected matches (never proposed again)", permissions=["change"])
    def reject_selected(self, request, queryset) -> None:
        self.decide(request, queryset, MatchStatus.REJECTED)

    @admin.action(description="Set the selected matches back to pending (undo a decision)", permissions=["change"])
    def set_pending_selected(self, request, queryset) -> None:
        self.decide(request, queryset, MatchStatus.PENDING)


RUN_FIELDS = ("agency", "case", "status", "progress_shown", "parts", "parts_done", "candidates", "matches",
              "started_at", "finished_at", "error", "created_by", "created_at")


@admin.register(XrefRun)
class XrefRunAdmin(PolicyAdminMixin, admin.ModelAdmin):
    """Runs are started through the API or `manage.py xref`; here they are followed."""

    list_display = ("created_at", "case", "status", "progress_shown", "candidates", "matches", "started_at",
                    "finished_at", "created_by")
    list_filter = ("status",)
    list_select_related = ("case", "created_by", "agency")
    fields = RUN_FIELDS
    readonly_fields = RUN_FIELDS

    @admin.display(description="progress")
    def progress_shown(self, obj: XrefRun) -> str:
        return f"{100 * obj.progress:.0f}% ({obj.parts_done}/{obj.parts} parts)"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class WithdrawnFilter(admin.BooleanFieldListFilter):
    """`archived`, as a hit's withdrawal is called."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = "withdrawn"


HIT_FIELDS = ("entity", "other_agency", "contact", "score_shown", "withdrawn", "agency", "created_at", "updated_at")


@admin.register(DeconflictionHit)
class DeconflictionHitAdmin(PolicyAdminMixin, admin.ModelAdmin):
    """Another agency holds a record matching one of the agency's: whom to call. Cross-referencing makes,
    refreshes and withdraws hits; here they are read. The match behind a hit is never shown (it names the other
    agency's record)."""

    list_display = ("entity", "other_agency", "contact", "score_shown", "withdrawn", "created_at", "agency")
    list_filter = (("agency", admin.RelatedOnlyFieldListFilter), ("other_agency", admin.RelatedOnlyFieldListFilter),
                   ScoreFilter, ("archived", WithdrawnFilter))
    list_select_related = ("entity", "other_agency", "agency")
    search_fields = ("entity__name",)
    ordering = ("-created_at", "id")
    list_per_page = 50
    fields = HIT_FIELDS
    readonly_fields = HIT_FIELDS

    @admin.display(description="score", ordering="score")
    def score_shown(self, obj: DeconflictionHit) -> str:
        return f"{obj.score:.2f}"

    @admin.display(description="withdrawn", boolean=True, ordering="archived")
    def withdrawn(self, obj: DeconflictionHit) -> bool:
        return obj.archived

    @admin.display(description="whom to call")
    def contact(self, obj: DeconflictionHit) -> str:
        return obj.other_agency.contact

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
