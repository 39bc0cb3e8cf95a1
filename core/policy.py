"""The one access policy of the project (API.md § Access).

Every viewset, the admin, search, exports and workers ask here which rows a user may see
(`visible`) or change (`writable`), and whether their role may perform an action (`allows`).
Nothing else filters by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from django.core.checks import CheckMessage, Error
from django.core.exceptions import EmptyResultSet, PermissionDenied
from django.db import models
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import RawSQL

from accounts.choices import Role, clears, levels_up_to

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
    "xref.run": ANALYSTS_UP,
    "xref.decide": ANALYSTS_UP,
    "alert.change": ANALYSTS_UP,
    "audit.view": AUDIT_READERS,
    "accounts.change": ADMINS,
}


# --- scopes are built once per caller ------------------------------------------------------------
#
# A scope's SQL depends only on who asks (below: `caller_key`), never on the data, which its subqueries read
# when they run; building one with the ORM costs milliseconds, so each process keeps the scopes it built, by
# caller, and hands out a fresh copy (`.all()`: a clone, never evaluated in place) of the stored one. Compiling it
# to SQL costs as much again on every query that uses it, so the id subqueries inside a scope, and the ids of a
# scope a viewset's queryset is narrowed by, are kept as the SQL they compile to (`_compiled`).

_SCOPES: dict[tuple[Any, ...], Any] = {}  # scopes (QuerySet) and the ids of scopes compiled (_scope_ids)
SCOPES_KEPT = 2048  # scopes of all callers together; the store starts again when full


def caller_key(user: Any) -> tuple[Any, ...] | None:
    """Everything about the caller that a scope's SQL depends on; None for an anonymous caller (not kept)."""
    if not getattr(user, "is_authenticated", False):
        return None
    return (user.pk, user.agency_id, user.unit_id, user.role, user.clearance, bool(user.is_superuser),
            user.is_active)


def _kept(name: tuple[Any, ...], user: Any, build: Callable[[], QuerySet]) -> QuerySet:
    caller = caller_key(user)
    if caller is None:
        return build()
    key = (*name, *caller)
    scope = _SCOPES.get(key)
    if scope is None:
        if len(_SCOPES) >= SCOPES_KEPT:
            _SCOPES.clear()
        scope = _SCOPES[key] = build()
    return scope.all()


def _compiled(ids: QuerySet) -> QuerySet | RawSQL:
    """A subquery of ids (`qs.values("pk")`) as the SQL it compiles to, compiled now: the same subquery, but a
    query that has it in its `WHERE` does not compile it again each time it runs. Self-contained (its own
    `FROM`, no reference to an outer query), it reads the rows when the query runs, as the queryset would. An
    empty queryset (`none()`), which compiles to no SQL, stays as it is."""
    try:
        sql, params = ids.order_by().query.sql_with_params()
    except EmptyResultSet:
        return ids
    return RawSQL(sql, params)  # noqa: S611 (the ORM's own SQL; values stay parameters)


def _scope_ids(name: tuple[Any, ...], user: Any, scoped: QuerySet) -> QuerySet | RawSQL:
    """The ids of a kept scope, compiled once per caller (`_compiled`)."""
    caller = caller_key(user)
    if caller is None:
        return scoped.values("pk")
    key = ("ids", *name, *caller)
    ids = _SCOPES.get(key)
    if ids is None:
        if len(_SCOPES) >= SCOPES_KEPT:
            _SCOPES.clear()
        ids = _SCOPES[key] = _compiled(scoped.values("pk"))
    return ids


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
    return Q(pk__in=_compiled(shares.values("case_id")))


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
    return _kept(("cases.view",), user, lambda: _cases_visible(user))


def _cases_visible(user: Any) -> QuerySet:
    from cases.models import Case

    qs = Case.objects.all()
    if _is_super(user):
        return qs
    if not getattr(user, "is_authenticated", False) or user.agency_id is None:
        return qs.none()
    # members__id joins a many-to-many: select ids first so rows are not repeated.
    return qs.filter(pk__in=_compiled(Case.objects.filter(_case_view_q(user)).values("pk")))


def cases_writable(user: Any, action: str = "case.change") -> QuerySet:
    """Visible cases on which the user may perform `action` (an ACTION_ROLES key)."""
    return _kept(("cases.change", action), user, lambda: _cases_writable(user, action))


def _cases_writable(user: Any, action: str) -> QuerySet:
    visible = cases_visible(user)
    if _is_super(user):
        return visible
    if not allows(user, action):
        return visible.none()
    if action in ("case.close", "case.reopen", "case.archive", "case.share"):
        return visible.filter(agency_id=user.agency_id)
    return visible.filter(_case_write_q(user))


def case_writable_seen(user: Any, case: Any, action: str = "case.change") -> bool:
    """Whether `cases_writable(user, action)` holds `case`, a case the user sees (read through `cases_visible` in
    this transaction). Of the user's own agency that is their role's alone (`_cases_writable`), known without
    a query; any other case asks the database."""
    if not _is_super(user) and user.agency_id is not None and case.agency_id == user.agency_id:
        return allows(user, action)
    return cases_writable(user, action).filter(pk=case.pk).exists()


# What a case's visibility depends on among its own fields (`_case_view_q`; shares are rows of their own).
CASE_SCOPE_FIELDS = frozenset({"agency", "classification", "unit", "lead", "members"})


def known_visible(user: Any, obj: Any, *, changed: Iterable[str] | None) -> bool:
    """True when `obj` is visible to the user after a write, known without a query: a record of their agency
    that every user of it sees (`sees_own_agency`), or a case they saw before the write (read through
    `cases_visible`, locked) whose write changed none of `CASE_SCOPE_FIELDS` (`changed`: the fields written; None
    for a new row). False: only `visible` can tell."""
    label = _label(type(obj))
    if label in _AGENCY_RECORDS and sees_own_agency(user, label) and (
            _is_super(user) or getattr(obj, "agency_id", None) == user.agency_id):
        return True
    return label == "cases.case" and changed is not None and not CASE_SCOPE_FIELDS.intersection(changed)


def case_access(user: Any, case: Any) -> str | None:
    """'write' where the user's agency owns the case or holds a write share; 'read' otherwise."""
    if _is_super(user) or case.agency_id == user.agency_id:
        return "write"
    return "write" if cases_writable(user, "case.change").filter(pk=case.pk).exists() else "read"


# Fields of a case that only its owning agency changes; a read-write share edits the rest of its content
# (title, summary, priority, tags, commodities, status up to `referred`, and its parties, notes, evidence and
# prosecutions). Sharing, closing, reopening and archiving are owner-only actions (cases_writable above).
OWNER_ONLY_CASE_FIELDS = ("classification", "unit", "lead", "members")


def may_classify(user: Any, classification: str) -> bool:
    """A user may give a case a classification only up to their clearance (or they could not read it)."""
    return _is_super(user) or clears(user.clearance, classification)


def check_case_change(user: Any, case: Any, changed: Iterable[str]) -> None:
    """PermissionDenied (403) when the user's agency does not own `case` and `changed` names an owner-only field."""
    if _is_super(user) or case.agency_id == user.agency_id:
        return
    refused = [field for field in OWNER_ONLY_CASE_FIELDS if field in set(changed)]
    if refused:
        raise PermissionDenied(f"Only the agency that owns the case may change {', '.join(refused)}.")


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
    return qs.filter(own | Q(pk__in=_compiled(linked)))


def _own_agency_writable(model: type[models.Model], action: str) -> Scope:
    def writable(user: Any) -> QuerySet:
        qs = model._default_manager.all()
        if _is_super(user):
            return qs
        if not allows(user, action):
            return qs.none()
        return qs.filter(agency_id=user.agency_id)

    return writable


# --- cross-referencing ----------------------------------------------------------------------

def matches_visible(user: Any) -> QuerySet:
    """The matches of one agency whose two records the user both sees: another agency's record never shows in
    one, even a record the user sees through a shared case (a match across agencies reaches each side only as a
    deconfliction hit). Another agency's own match reaches the user as its records do: through a shared case."""
    from xref.models import Match

    qs = Match.objects.all()
    if _is_super(user):
        return qs
    entities = visible(user, "entities.entity").values("pk")
    return qs.filter(left_agency=F("right_agency"), left__in=entities, right__in=entities)


def matches_decidable(user: Any) -> QuerySet:
    """The matches the user may decide: visible ones of their own agency (another agency's, seen through a shared
    case, are read-only), for the roles of `xref.decide`."""
    from xref.models import Match

    if not allows(user, "xref.decide"):
        return Match.objects.none()
    qs = matches_visible(user)
    return qs if _is_super(user) else qs.filter(left_agency_id=user.agency_id)


# --- the registry: each app registers its models in its AppConfig.ready() -------------------

Scope = Callable[[Any], QuerySet]
_VIEW: dict[str, Scope] = {}
_CHANGE: dict[str, Scope] = {}
_AGENCY_RECORDS: set[str] = set()  # registered by register_agency_records: seen by every user of their agency


def _label(model_or_qs: Any) -> str:
    if isinstance(model_or_qs, str):
        return model_or_qs.lower()
    model = model_or_qs.model if isinstance(model_or_qs, QuerySet) else model_or_qs
    return model._meta.label_lower


def register(model: type[models.Model] | str, *, view: Scope, change: Scope) -> None:
    """Declare who sees (`view`) and who changes (`change`) the rows of `model`: each a function of the user
    giving a queryset. Every model an agency or a case owns must be registered (system check policy.E001)."""
    _VIEW[_label(model)] = view
    _CHANGE[_label(model)] = change
    _SCOPES.clear()  # a scope kept before this entry changed is not its scope any more


def register_agency_records(model: type[models.Model], *, action: str | None,
                            via_cases: str | None = None) -> None:
    """An agency record: every user of the owning agency sees it; another agency only through a case shared
    with it (`via_cases`, the lookup from the record to its cases), read-only; `action` (ACTION_ROLES) writes.
    `action` None: no user writes it (workers and imports make it through its services)."""
    change = _own_agency_writable(model, action) if action else (lambda user: model._default_manager.none())
    register(model, view=partial(_agency_records, model, via_cases=via_cases), change=change)
    _AGENCY_RECORDS.add(_label(model))


def register_case_records(model: type[models.Model], *, action: str) -> None:
    """A case's own record: seen with its case, written where the user may perform `action` on the case."""
    register(model,
             view=lambda user: model._default_manager.filter(case__in=_compiled(cases_visible(user).values("pk"))),
             change=lambda user: model._default_manager.filter(
                 case__in=_compiled(cases_writable(user, action).values("pk"))))


def register_internal(model: type[models.Model]) -> None:
    """A model no user reads or writes through the API or the admin (counters, heads of chains)."""
    register(model, view=lambda user: model._default_manager.none(),
             change=lambda user: model._default_manager.none())


def sees_own_agency(user: Any, model: type[models.Model] | str) -> bool:
    """Whether the user sees every row of `model` that their agency owns (an agency record, a user of an agency),
    so that a caller may know a row of their agency visible without asking `visible`."""
    if _is_super(user):
        return True
    return bool(getattr(user, "is_authenticated", False) and user.agency_id is not None
                and _label(model) in _AGENCY_RECORDS)


def is_registered(model: type[models.Model] | str) -> bool:
    return _label(model) in _VIEW


def visible(user: Any, model_or_qs: Any) -> QuerySet:
    """The rows of a model (or narrowed queryset) the user may see."""
    label = _label(model_or_qs)
    scoped = _kept(("view", label), user, lambda: _VIEW[label](user))
    if isinstance(model_or_qs, QuerySet):
        return model_or_qs.filter(pk__in=_scope_ids(("view", label), user, scoped))
    return scoped


def writable(user: Any, model_or_qs: Any) -> QuerySet:
    """The rows the user may change."""
    label = _label(model_or_qs)
    scoped = _kept(("change", label), user, lambda: _CHANGE[label](user))
    if isinstance(model_or_qs, QuerySet):
        return model_or_qs.filter(pk__in=_scope_ids(("change", label), user, scoped))
    return scoped


def audit_events_visible(user: Any) -> QuerySet:
    from audit.models import AuditEvent

    qs = AuditEvent.objects.all()
    if _is_super(user):
        return qs
    if not allows(user, "audit.view"):
        return qs.none()
    return qs.filter(chain=str(user.agency_id))


def register_account_records(model: type[models.Model], *, agency_field: str) -> None:
    """Agencies, units and users: seen within the user's agency, changed by its agency admins."""

    def view(user: Any) -> QuerySet:
        qs = model._default_manager.all()
        if _is_super(user):
            return qs
        if not getattr(user, "is_authenticated", False) or user.agency_id is None:
            return qs.none()
        return qs.filter(**{agency_field: user.agency_id})

    def change(user: Any) -> QuerySet:
        qs = view(user)
        if _is_super(user):
            return qs
        return qs if allows(user, "accounts.change") else qs.none()

    register(model, view=view, change=change)


# --- the system check ----------------------------------------------------------------------


def _owned(model: type[models.Model]) -> bool:
    """Whether an agency or a case owns the model's rows (a foreign key named `agency` or `case`)."""
    owners = ("accounts.agency", "cases.case")
    return any(field.name in ("agency", "case") and _label_of(field.related_model) in owners
               for field in model._meta.concrete_fields)


def _label_of(related: Any) -> str:
    meta = getattr(related, "_meta", None)
    return meta.label_lower if meta is not None else ""


def check_registrations(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """policy.E001: a model that an agency or a case owns, with no entry in the access policy."""
    from django.apps import apps

    errors: list[CheckMessage] = []
    configs = app_configs or apps.get_app_configs()
    for config in configs:
        for model in config.get_models():
            if _owned(model) and not is_registered(model):
                errors.append(Error(
                    f"{model._meta.label} is owned by an agency or a case but the access policy has no entry "
                    "for it.",
                    hint=f"Register its scoping in {config.name}'s AppConfig.ready() with core.policy.register "
                         "(or register_agency_records, register_case_records, register_internal).",
                    obj=model, id="policy.E001",
                ))
    return errors
