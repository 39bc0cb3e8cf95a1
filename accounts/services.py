"""Account services: issuing and revoking tokens, creating agencies, units and users (idempotent)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from audit.services import record
from core.services import audit_change, audit_create
from core.snapshots import diff, snapshot, snapshot_values

from .choices import Clearance, Role
from .models import Agency, ApiToken, Unit, User

A = TypeVar("A", Agency, Unit)


@transaction.atomic
def token_issue(*, user: User, days: int | None = None) -> tuple[ApiToken, str]:
    token, key = ApiToken.issue(user, days)
    record(action="token_issued", obj=token, actor=user, agency=user.agency,
           changes={"prefix": [None, token.prefix], "expires_at": [None, token.expires_at.isoformat()]})
    return token, key


@transaction.atomic
def token_revoke(*, token: ApiToken, actor: User) -> None:
    now = timezone.now()
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    record(action="token_revoked", obj=token, actor=actor, agency=token.user.agency,
           changes={"revoked_at": [None, now.isoformat()]} if revoked else {})


TOKEN_USE_STAMP_SECONDS = 60


def token_used(*, token: ApiToken) -> None:
    """Stamp a token's last use, at most once a minute: a note for its owner's list of tokens, not a change of the
    token (no version, no audit event), and one statement in the minute it is written, none in the others."""
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > TOKEN_USE_STAMP_SECONDS:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


@transaction.atomic
def agency_ensure(*, code: str, name: str, contact: str | None = None) -> tuple[Agency, bool]:
    agency, created = Agency.objects.get_or_create(code=code, defaults={"name": name, "contact": contact or ""})
    before = {} if created else {"code": agency.code, "name": agency.name, "contact": agency.contact}
    agency.name = name
    if contact is not None:
        agency.contact = contact
    changes = diff(before, {"code": code, "name": name, "contact": agency.contact})
    if changes and not created:
        agency.save()
    if changes:
        record(action="create" if created else "update", obj=agency, agency=agency, changes=changes)
    return agency, created


@transaction.atomic
def agency_save(*, agency: Agency, actor: Any, data: Mapping[str, Any]) -> Agency:
    """Create (an unsaved `agency`) or change an agency with parsed values (the admin's form): audited; a save
    that changes nothing keeps the version and records nothing."""
    return _save(agency, actor=actor, data=data)


@transaction.atomic
def unit_save(*, unit: Unit, actor: Any, data: Mapping[str, Any]) -> Unit:
    """Create (an unsaved `unit`, its agency set) or change a unit with parsed values: as agency_save."""
    return _save(unit, actor=actor, data=data)


def _save(obj: A, *, actor: Any, data: Mapping[str, Any]) -> A:
    adding = obj._state.adding
    before = None if adding else snapshot(type(obj)._default_manager.select_for_update().get(pk=obj.pk))
    for name, value in data.items():
        setattr(obj, name, value)
    if before is not None and not diff(before, snapshot(obj)):
        return obj
    obj.save()
    if before is None:
        audit_create(obj, actor=actor)
    else:
        audit_change(obj, before, actor=actor)
    return obj


@transaction.atomic
def unit_ensure(*, agency: Agency, code: str, name: str) -> tuple[Unit, bool]:
    unit, created = Unit.objects.get_or_create(agency=agency, code=code, defaults={"name": name})
    if not created and unit.name != name:
        old, unit.name = unit.name, name
        unit.save()
        record(action="update", obj=unit, agency=agency, changes={"name": [old, name]})
    elif created:
        record(action="create", obj=unit, agency=agency, changes={"code": [None, code], "name": [None, name]})
    return unit, created


@transaction.atomic
def user_ensure(
    *,
    username: str,
    agency: Agency | None,
    role: str,
    unit: Unit | None = None,
    clearance: str | None = None,
    password: str | None = None,
    **extra: Any,
) -> tuple[User, bool]:
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(Role.values)}")
    if clearance is not None and clearance not in Clearance.values:
        raise ValueError(f"unknown clearance {clearance!r}; one of {', '.join(Clearance.values)}")
    if unit is not None and agency is not None and unit.agency_id != agency.pk:
        raise ValueError(f"unit {unit.code} is not a unit of {agency.code}")
    user, created = User.objects.get_or_create(username=username, defaults={"agency": agency, "role": role})
    if not created and user.agency_id not in (None, getattr(agency, "pk", None)):
        raise ValueError(f"user {username} belongs to agency {user.agency}, not {agency}")
    fields = {"agency": agency, "role": role, "unit": unit, **extra}
    if clearance is not None:
        fields["clearance"] = clearance
    before = {} if created else _user_values(user, fields)
    changed = sorted(name for name, value in fields.items() if getattr(user, name) != value)
    for name in changed:
        setattr(user, name, fields[name])
    changes = diff(before, _user_values(user, fields))
    if password and not user.check_password(password):
        user.set_password(password)
        changes["password"] = [None, PASSWORD_CHANGED]  # never the password, nor its hash
    elif created and not password:
        user.set_unusable_password()
    if created or changes:
        user.save()
        record(action="create" if created else "update", obj=user, agency=agency, changes=changes)
    return user, created


@transaction.atomic
def user_unlock(*, user: User, actor: Any = None) -> None:
    locked_until, failed = User.objects.values_list("locked_until", "failed_logins").get(pk=user.pk)
    User.objects.filter(pk=user.pk).update(locked_until=None, failed_logins=0)
    record(action="update", obj=user, actor=actor, agency=user.agency,
           changes=diff({"locked_until": locked_until.isoformat() if locked_until else None, "failed_logins": failed},
                        {"locked_until": None, "failed_logins": 0}))


PASSWORD_CHANGED = "(changed)"  # what a user's event records of a new password


def _user_values(user: User, fields: dict[str, Any]) -> dict[str, Any]:
    """The audited values of a user's `fields` (related records by their code or id)."""
    values = {}
    for name in fields:
        value = getattr(user, name)
        values[name] = value.code if isinstance(value, Agency | Unit) else value
    return snapshot_values(values)


def record_admin_user_change(*, user: User, actor: Any, created: bool, fields: list[str]) -> None:
    """Audit an admin edit of a user: the fields that changed, by their new value (never the password)."""
    changes = {f: [None, PASSWORD_CHANGED if f == "password" else snapshot_values({f: getattr(user, f, None)})[f]]
               for f in fields}
    record(action="create" if created else "update", obj=user, actor=actor, agency=user.agency, changes=changes)
