"""The one access policy of the project (API.md § Access).

Every viewset, the admin, search, exports and workers ask here which rows a user may see
(`visible`) or change (`writable`), and whether their role may perform an action (`allows`).
Nothing else filters by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import models
from django.db.models import Q, QuerySet

from accounts.choices import Role, levels_up_to

ANALYSTS_UP = frozenset({Role.ANALYST, Role.INVESTIGATOR, Role.SUPERVISOR, Role.AGENCY_ADMIN})
INVESTIGATORS_UP = frozenset({Role.INVESTIGATOR, Role.SUPERVISOR, Role.AGENCY_ADMIN})
SUPERVISORS_UP = frozenset({Role.SUPERVISOR, Role.AGENCY_ADMIN})
AGENCY_WIDE_READERS = frozenset({Role.SUPERVISOR, Role.AUDITOR, Role.AGENCY_ADMIN})
AUDIT_READERS = AGENCY_WIDE_READERS
ADMINS = frozenset({Role.AGENCY_ADMIN})

# What each role may do, by action. Row scoping comes on top of this.
ACTION_ROLES: dict[str, frozenset[str]] = {
    "case.create": INVESTIGATORS_UP,
    "case.change": INVESTIGATORS_UP,
    "case.party": INVESTIGATORS_UP,
    "case.note": ANALYSTS_UP,
    "case.close": SUPERVISORS_UP,
    "case.reopen": SUPERVISORS_UP,
    "case.archive": SUPERVISORS_UP,
    "case.share": SUPERVISORS_UP,
    "case.include_archived": SUPERVISORS_UP,
    "entity.change": INVESTIGATORS_UP,
    "link.change": ANALYSTS_UP,
    "audit.view": AUDIT_READERS,
    "accounts.change": ADMINS,
}


def _is_super(user: Any) -> bool:
    return bool(getattr(user, "is_superuser", False))


def allows(user: Any, action: str) -> bool:
    """Whether the user's role may perform `action` at all (before row scoping)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if _is_super(user):
        return True
    return user.agency_id is not None and user.role in ACTION_ROLES[action]


# --- cases ---------------------------------------------------------------------------------


def _shared_with(user: Any, access: tuple[str, ...]) -> Q:
    """Cases shared with the user's agency (or unit) at one of `access`, not revoked."""
    from cases.models import CaseShare

    shares = CaseShare.objects.filter(agency_id=user.agency_id, archived=False, access__in=access).filter(
        Q(unit__isnull=True) | Q(unit_id=user.unit_id)
    )
    return Q(pk__in=shares.values("case_id"))


def _case_view_q(user: Any) -> Q:
    cleared = Q(classification__in=levels_up_to(user.clearance))
    if user.role in AGENCY_WIDE_READERS:
        own = Q(agency_id=user.agency_id)
    else:
        own = Q(agency_id=user.agency_id) & (
            Q(unit_id=user.unit_id, unit__isnull=False) | Q(lead_id=user.pk) | Q(members__id=user.pk)
        )
    return cleared & (own | _shared_with(user, ("read", "write")))


def _case_write_q(user: Any) -> Q:
    """Cases whose content the user's agency may write: its own, or shared read-write."""
    return Q(agency_id=user.agency_id) | _shared_with(user, ("write",))


def cases_visible(user: Any) -> QuerySet:
    from cases.models import Case

    qs = Case.objects.all()
    if _is_super(user):
        return qs
    if not getattr(user, "is_authenticated", False) or user.agency_id is None:
        return qs.none()
    # members__id joins a many-to-many: select ids first so rows are not repeated.
    return qs.filter(pk__in=Case.objects.filter(_case_view_q(user)).values("pk"))


def cases_writable(user: Any, action: str = "case.change") -> QuerySet:
    """Visible cases on which the user may perform `action` (an ACTION_ROLES key)."""
    visible = cases_visible(user)
    if _is_super(user):
        return visible
    if not allows(user, action):
        return visible.none()
    if action in ("case.close", "case.reopen", "case.archive", "case.share"):
        return visible.filter(agency_id=user.agency_id)
    return visible.filter(_case_write_q(user))


def case_access(user: Any, case: Any) -> str | None:
    """'write' where the user's agency owns the case or holds a write share; 'read' otherwise."""
    if _is_super(user) or case.agency_id == user.agency_id:
        return "write"
    return "write" if cases_writable(user, "case.change").filter(pk=case.pk).exists() else "read"


# --- agency records ------------------------------------------------------------------------


def _agency_records(model: type[models.Model], user: Any, via_cases: str | None) -> QuerySet:
    qs = model._default_manager.all()
    if _is_super(user):
        return qs
    if not getattr(user, "is_authenticated", False) or user.agency_id is None:
        return qs.none()
    own = Q(agency_id=user.agency_id)
    if via_cases is None:
        return qs.filter(own)
    shared_cases = cases_visible(user).exclude(agency_id=user.agency_id).values("pk")
    linked = model._default_manager.filter(**{f"{via_cases}__in": shared_cases}).values("pk")
    return qs.filter(own | Q(pk__in=linked))


def _own_agency_writable(model: type[models.Model], action: str) -> Callable[[Any], QuerySet]:
    def writable(user: Any) -> QuerySet:
        qs = model._default_manager.all()
        if _is_super(user):
            return qs
        if not allows(user, action):
            return qs.none()
        return qs.filter(agency_id=user.agency_id)

    return writable


# --- the registry --------------------------------------------------------------------------

Scope = Callable[[Any], QuerySet]
_VIEW: dict[str, Scope] = {}
_CHANGE: dict[str, Scope] = {}


def register(label: str, *, view: Scope, change: Scope) -> None:
    _VIEW[label] = view
    _CHANGE[label] = change


def _label(model_or_qs: Any) -> str:
    model = model_or_qs.model if isinstance(model_or_qs, QuerySet) else model_or_qs
    return model._meta.label_lower


def visible(user: Any, model_or_qs: Any) -> QuerySet:
    """The rows of a model (or narrowed queryset) the user may see."""
    scoped = _VIEW[_label(model_or_qs)](user)
    if isinstance(model_or_qs, QuerySet):
        return model_or_qs.filter(pk__in=scoped.values("pk"))
    return scoped


def writable(user: Any, model_or_qs: Any) -> QuerySet:
    """The rows the user may change."""
    scoped = _CHANGE[_label(model_or_qs)](user)
    if isinstance(model_or_qs, QuerySet):
        return model_or_qs.filter(pk__in=scoped.values("pk"))
    return scoped


def _case_child(model_path: str, action: str) -> tuple[Scope, Scope]:
    def view(user: Any) -> QuerySet:
        from django.apps import apps

        model = apps.get_model(model_path)
        return model._default_manager.filter(case__in=cases_visible(user).values("pk"))

    def change(user: Any) -> QuerySet:
        from django.apps import apps

        model = apps.get_model(model_path)
        return model._default_manager.filter(case__in=cases_writable(user, action).values("pk"))

    return view, change


def _audit_view(user: Any) -> QuerySet:
    from audit.models import AuditEvent

    qs = AuditEvent.objects.all()
    if _is_super(user):
        return qs
    if not allows(user, "audit.view"):
        return qs.none()
    return qs.filter(chain=str(user.agency_id))


def _accounts_view(model_path: str, agency_field: str) -> Scope:
    def view(user: Any) -> QuerySet:
        from django.apps import apps

        qs = apps.get_model(model_path)._default_manager.all()
        if _is_super(user):
            return qs
        if not getattr(user, "is_authenticated", False) or user.agency_id is None:
            return qs.none()
        return qs.filter(**{agency_field: user.agency_id})

    return view


def _accounts_change(model_path: str, agency_field: str) -> Scope:
    view = _accounts_view(model_path, agency_field)

    def change(user: Any) -> QuerySet:
        qs = view(user)
        if _is_super(user):
            return qs
        return qs if allows(user, "accounts.change") else qs.none()

    return change


def _register_all() -> None:
    from entities.models import Entity, Link, Organization, Person
    from shipments.models import Licence, Shipment

    register("cases.case", view=cases_visible, change=lambda user: cases_writable(user, "case.change"))
    for label, action in (("cases.CaseParty", "case.party"), ("cases.Note", "case.note"),
                          ("cases.Prosecution", "case.party"), ("cases.Evidence", "case.party")):
        child_view, child_change = _case_child(label, action)
        register(label.lower(), view=child_view, change=child_change)
    _, share_change = _case_child("cases.CaseShare", "case.share")
    register("cases.caseshare", view=share_change, change=share_change)  # shares are the sharers' to read
    # Agency records: another agency sees them only through a case shared with it (read-only).
    for model, via_cases, action in (
        (Entity, "case_parties__case", "entity.change"),
        (Person, "case_parties__case", "entity.change"),
        (Organization, "case_parties__case", "entity.change"),
        (Link, "case", "link.change"),
        (Shipment, "cases", "entity.change"),
        (Licence, "shipments__cases", "entity.change"),
    ):
        register(model._meta.label_lower, view=partial(_agency_records, model, via_cases=via_cases),
                 change=_own_agency_writable(model, action))
    from imports.models import ImportJob

    # Import jobs: every user of the owning agency sees them; investigators and up start them.
    register("imports.importjob", view=partial(_agency_records, ImportJob, via_cases=None),
             change=_own_agency_writable(ImportJob, "entity.change"))
    register("audit.auditevent", view=_audit_view, change=lambda user: _audit_view(user).none())
    register("accounts.agency", view=_accounts_view("accounts.Agency", "pk"),
             change=_accounts_change("accounts.Agency", "pk"))
    register("accounts.unit", view=_accounts_view("accounts.Unit", "agency_id"),
             change=_accounts_change("accounts.Unit", "agency_id"))
    register("accounts.user", view=_accounts_view("accounts.User", "agency_id"),
             change=_accounts_change("accounts.User", "agency_id"))
