"""The one write path of alerts (API.md § Alerts).

Rules (alerts.redflags, watchlist screening) find; `settle` writes what they found: for each subject and each
rule evaluated on it, a finding opens the rule's alert on the subject or refreshes it, and a rule that no longer
fires closes its open alert. One alert per rule and subject (the table's unique constraints), however often and
from however many workers the rules run. Every write is audited, in the transaction of the write.

Users change an alert's status and the case it is attached to through `alert_update` (API, admin), with the rules
of `alerts.rules`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.utils import timezone

from audit.services import prepare_events, record_many
from core import policy
from core.services import audit_change
from core.snapshots import diff, snapshot

from . import rules
from .models import Alert, AlertStatus

RESOLVED = "the rule no longer fires"
# What a refresh compares and writes, and what an audit event of a system write names.
_REFRESHED = ("severity", "related", "explanation", "label")


@dataclass(frozen=True)
class Finding:
    """What one rule found on one subject: the alert's severity, its reasons, and the records beside the
    subject (`related`: [{"type", "id", "label", …}]). `case`: the case to attach when the alert is new."""

    rule: str
    severity: str
    explanation: str
    related: list[dict[str, Any]] = field(default_factory=list)
    case_id: Any = None


def subject_field(subject: models.Model) -> str:
    """The alert's foreign key that holds `subject`: `shipment` or `entity`."""
    return "shipment" if subject._meta.label_lower == "shipments.shipment" else "entity"


def label_of(subject: models.Model) -> str:
    return str(getattr(subject, "reference", "") or getattr(subject, "name", "") or subject.pk)


def settle(subjects: Sequence[Any], rules: Iterable[str],
           findings: Mapping[Any, Sequence[Finding]], *, closed_reason: str = RESOLVED) -> dict[str, int]:
    """Write the outcome of evaluating `rules` on `subjects` (all shipments or all entities, of any agencies):
    `findings` maps a subject's pk to what fired on it. A finding without an alert creates one (open); with an
    open or escalated one, refreshes it; with one the system closed (`closed_reason` set), opens it again; with
    one a user dismissed, leaves it. An open alert of an evaluated rule with no finding is closed (`dismissed`,
    `closed_reason`). Returns counts: created, refreshed, reopened, closed."""
    rules = list(rules)
    counts = {"created": 0, "refreshed": 0, "reopened": 0, "closed": 0}
    if not subjects or not rules:
        return counts
    key = subject_field(subjects[0])
    by_pk = {s.pk: s for s in subjects}
    now = timezone.now()
    events: dict[Any, list[dict[str, Any]]] = {}

    def audit(alert: Alert, action: str, changes: dict[str, list[Any]]) -> None:
        events.setdefault(alert.agency_id, []).append(
            {"action": action, "object_type": "alert", "object_id": str(alert.pk),
             "case_id": alert.case_id, "changes": changes})

    with transaction.atomic():
        existing = {(getattr(a, f"{key}_id"), a.rule): a for a in Alert.objects.select_for_update().filter(
            **{f"{key}__in": list(by_pk)}, rule__in=rules)}
        new: list[Alert] = []
        changed: list[Alert] = []
        for pk, subject in by_pk.items():
            fired = {f.rule: f for f in findings.get(pk, ()) if f.rule in rules}
            for rule in rules:
                alert, finding = existing.get((pk, rule)), fired.get(rule)
                if finding is not None and alert is None:
                    alert = Alert(agency_id=subject.agency_id, rule=rule, severity=finding.severity,
                                  related=finding.related, explanation=finding.explanation,
                                  label=label_of(subject)[:300], case_id=finding.case_id, **{key: subject})
                    new.append(alert)
                    counts["created"] += 1
                elif finding is not None and alert is not None:
                    changes = _refresh(alert, finding, label_of(subject)[:300])
                    if alert.status == AlertStatus.DISMISSED and alert.closed_reason:
                        changes["status"] = [alert.status, AlertStatus.OPEN]
                        changes["closed_reason"] = [alert.closed_reason, ""]
                        alert.status, alert.closed_reason = AlertStatus.OPEN, ""
                        counts["reopened"] += 1
                    elif alert.status == AlertStatus.DISMISSED:
                        continue  # a user dismissed it: their decision stands while the facts are the same
                    elif changes:
                        counts["refreshed"] += 1
                    if changes:
                        changed.append(alert)
                        audit(alert, "update", changes)
                elif finding is None and alert is not None and alert.status == AlertStatus.OPEN:
                    audit(alert, "update", {"status": [alert.status, AlertStatus.DISMISSED],
                                            "closed_reason": ["", closed_reason]})
                    alert.status, alert.closed_reason = AlertStatus.DISMISSED, closed_reason
                    changed.append(alert)
                    counts["closed"] += 1
        for alert in changed:
            alert.version += 1
            alert.updated_at = now
        Alert.objects.bulk_update(changed, [*_REFRESHED, "status", "closed_reason", "version", "updated_at"])
        if new:
            Alert.objects.bulk_create(new)
            for alert in new:
                audit(alert, "create", {name: [None, _jsonable(getattr(alert, name))]
                                        for name in ("rule", "severity", "status", "label", "explanation")})
        _record(events)
    return counts


def close(alerts: models.QuerySet, *, closed_reason: str) -> int:
    """Close the open alerts of `alerts` (a watchlist entry delisted, a subject archived): `dismissed`, with the
    reason. Returns how many."""
    events: dict[Any, list[dict[str, Any]]] = {}
    with transaction.atomic():
        rows = list(alerts.select_for_update().filter(status=AlertStatus.OPEN))
        for alert in rows:
            events.setdefault(alert.agency_id, []).append(
                {"action": "update", "object_type": "alert", "object_id": str(alert.pk), "case_id": alert.case_id,
                 "changes": {"status": [alert.status, AlertStatus.DISMISSED], "closed_reason": ["", closed_reason]}})
            alert.status, alert.closed_reason = AlertStatus.DISMISSED, closed_reason
            alert.version += 1
            alert.updated_at = timezone.now()
        Alert.objects.bulk_update(rows, ["status", "closed_reason", "version", "updated_at"])
        _record(events)
    return len(rows)


class _Keep:
    """A field `alert_update` was not asked to change."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


def alert_update(user: Any, alert: Alert, *, status: Any = KEEP, case: Any = KEEP) -> Alert:
    """A user's change of an alert: its `status` (open | dismissed | escalated) and the `case` it is attached to
    (a Case, None detaches); a field not given stays as it is. Setting a status, even the one it has, makes it the
    user's (`status_changed_by/at`, `closed_reason` emptied): an alert a user dismissed stays dismissed while its
    rule still fires, where one the system closed opens again. Versioned and audited as `update`; a change that
    changes nothing writes nothing. RuleViolation (a bad status or case), PermissionDenied (the user may not change
    the alert), StateConflict (an archived alert)."""
    changes = {name: value for name, value in (("status", status), ("case", case)) if value is not KEEP}
    if user is not None and not policy.writable(user, Alert).filter(pk=alert.pk).exists():
        raise PermissionDenied("Only analysts and up of the alert's agency change it.")
    with transaction.atomic():
        locked = Alert.objects.select_for_update(of=("self",)).get(pk=alert.pk)
        rules.check_update(user, locked, changes)
        before = snapshot(locked)
        if "status" in changes and (changes["status"] != locked.status or locked.closed_reason):
            locked.status, locked.closed_reason = changes["status"], ""
            locked.status_changed_by = user if getattr(user, "pk", None) else None
            locked.status_changed_at = timezone.now()
        if "case" in changes:
            locked.case = changes["case"]
        if not diff(before, snapshot(locked)):
            return locked
        locked.save()  # a new version
        audit_change(locked, before, actor=user)
    return locked


def _refresh(alert: Alert, finding: Finding, label: str) -> dict[str, list[Any]]:
    changes: dict[str, list[Any]] = {}
    for name, value in (("severity", finding.severity), ("related", finding.related),
                        ("explanation", finding.explanation), ("label", label)):
        if getattr(alert, name) != value:
            changes[name] = [_jsonable(getattr(alert, name)), _jsonable(value)]
            setattr(alert, name, value)
    return changes


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | list | dict | type(None)) else str(value)


def _record(events: dict[Any, list[dict[str, Any]]]) -> None:
    from accounts.models import Agency

    for agency in Agency.objects.filter(pk__in=events):
        record_many(prepare_events(events[agency.pk], agency=agency, actor=None))
