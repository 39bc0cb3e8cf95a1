"""The one write path of alerts (API.md § Alerts).

Rules (alerts.redflags, watchlist screening) find; `settle` writes what they found: for each subject and each
rule evaluated on it, a finding opens the rule's alert on the subject or refreshes it, and a rule that no longer
fires closes its open alert. One alert per rule and subject (the table's unique constraints), however often and
from however many workers the rules run. Every write is audited, in the transaction of the write.

Users change an alert's status and the case it is attached to through `alert_update` (API, admin), with the rules
of `alerts.rules`.

When the rules run (`evaluate_shipments`, `evaluate_entities`, ALERT_BATCH subjects a transaction, each batch's
subjects locked while they are evaluated and settled):
- after a committed write, through the outbox: `records_changed` (called by the outbox's records_changed task
  after cross-referencing) evaluates what the write touched;
- in a full pass over an agency (`run_create`; `manage.py alerts`): `run_start` splits the agency's shipments and
  entities into ALERT_RUN_PARTS parts (`alerts.run`), each evaluated by an `alerts.run_part` task, shared by the
  workers; or all of it in one process (`run_sync`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from audit.services import prepare_events, record_many
from core import outbox, policy
from core.services import audit_change
from core.snapshots import diff, snapshot

from . import rules
from .models import Alert, AlertRun, AlertStatus, RunStatus

logger = logging.getLogger(__name__)
T = TypeVar("T")

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


# --- evaluation ---------------------------------------------------------------------------------------------------


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _evaluate(subjects: list[Any], batch: Any, kind: str) -> Counter[str]:
    """Run the rules of `kind` on the live subjects of `batch` and settle them for all `subjects` (an archived
    subject has no finding: its open alerts close)."""
    from . import redflags

    rules = redflags.rules_for(kind)
    findings: dict[Any, list[Finding]] = {}
    for rule in rules:
        for hit in rule.check(batch):
            findings.setdefault(hit.pk, []).append(
                Finding(str(rule.name), hit.severity or rule.severity, hit.explanation, hit.related, hit.case_id))
    counts = Counter(settle(subjects, [str(rule.name) for rule in rules], findings))
    counts["evaluated"] += len(subjects)
    return counts


# What the rules read of their subjects (and settle of their agency and label): the rest is not loaded.
SHIPMENT_FIELDS = (
    "agency_id", "archived", "reference", "commodity_id", "hs_code", "declared_hs_code", "declared_description",
    "quantity_kg", "declared_value", "currency", "origin_country", "destination_country", "transit_countries",
    "departed_on", "seized_on", "consignee_id", "licence__number", "licence__archived", "licence__status",
    "licence__commodity_id", "licence__max_quantity_kg", "licence__destination_country", "licence__end_user_id",
    "licence__valid_from", "licence__valid_to")
ENTITY_FIELDS = ("agency_id", "archived", "type", "name", "lists", "incorporated_on", "addresses", "phones")


def evaluate_shipments(ids: Iterable[Any]) -> Counter[str]:
    """Evaluate the shipment rules on these shipments and settle their alerts; returns what was written."""
    from shipments.models import Shipment

    from .redflags import SHIPMENT, ShipmentBatch

    counts: Counter[str] = Counter()
    for chunk in _chunks(sorted({str(pk) for pk in ids}), settings.ALERT_BATCH):
        with transaction.atomic():
            shipments = list(Shipment.objects.select_for_update(no_key=True, of=("self",)).filter(pk__in=chunk)
                             .select_related("licence").only(*SHIPMENT_FIELDS).order_by("pk"))
            counts += _evaluate(shipments, ShipmentBatch([s for s in shipments if not s.archived]), SHIPMENT)
    return counts


def evaluate_entities(ids: Iterable[Any]) -> Counter[str]:
    """Evaluate the person and organisation rules on these entities and settle their alerts."""
    from entities.models import Entity

    from .redflags import ENTITY, EntityBatch

    counts: Counter[str] = Counter()
    for chunk in _chunks(sorted({str(pk) for pk in ids}), settings.ALERT_BATCH):
        with transaction.atomic():
            entities = list(Entity.objects.select_for_update(no_key=True).filter(pk__in=chunk)
                            .only(*ENTITY_FIELDS).order_by("pk"))
            counts += _evaluate(entities, EntityBatch([e for e in entities if not e.archived]), ENTITY)
    return counts


SHIPMENT_MODEL = "shipments.shipment"
LICENCE_MODEL = "shipments.licence"
LINK_MODEL = "entities.link"
PARTY_MODEL = "cases.caseparty"
ENTITY_MODELS = frozenset({"entities.entity", "entities.person", "entities.organization"})


def records_changed(model: str, ids: Sequence[Any]) -> Counter[str]:
    """After a committed write of records of `model` (their cross-referencing done): evaluate the rules whose
    subjects the write touched. A shipment: its rules, those of the shipments under the same licence when they
    exceed it together (`_exceeding_siblings`), and its parties'; a licence: its shipments; a person or
    organisation: its rules, the parties matched to it when it is a listed entry, and the organisations that
    share an address, a phone or an officer with it when it is a case party; a link: its two ends; a case party:
    its entity and those organisations."""
    from entities.models import Link
    from shipments.models import PARTY_ROLES, Shipment

    shipments: set[Any] = set()
    entities: set[Any] = set()
    if not ids:
        return Counter()
    if model == SHIPMENT_MODEL:
        rows = list(Shipment.objects.filter(pk__in=ids).values("id", "licence_id",
                                                               *(f"{role}_id" for role in PARTY_ROLES)))
        shipments = {row["id"] for row in rows} | _exceeding_siblings({row["licence_id"] for row in rows})
        entities = {row[f"{role}_id"] for row in rows for role in PARTY_ROLES if row[f"{role}_id"]}
    elif model == LICENCE_MODEL:
        shipments = set(Shipment.objects.filter(licence_id__in=ids).values_list("pk", flat=True))
    elif model in ENTITY_MODELS:
        entities = set(ids) | _matched_to_listed(ids) | _near_suspects(ids)
    elif model == LINK_MODEL:
        entities = {pk for pair in Link.objects.filter(pk__in=ids).values_list("source_id", "target_id")
                    for pk in pair}
    elif model == PARTY_MODEL:
        from cases.models import CaseParty

        named = set(CaseParty.objects.filter(pk__in=ids).values_list("entity_id", flat=True))
        entities = named | _near_suspects(named)
    return evaluate_shipments(shipments) + evaluate_entities(entities)


def _exceeding_siblings(licences: set[Any]) -> set[Any]:
    """The shipments under those of `licences` that their shipments exceed together, or that have an open
    licence_exceeded alert (which may close): a write of one shipment can change theirs. (Under a licence within
    its maximum no shipment exceeds it: its shipments are left alone, however many.)"""
    from django.db.models import F, Sum

    from shipments.models import Licence, Shipment

    licences.discard(None)
    if not licences:
        return set()
    over = set(Licence.objects.filter(pk__in=licences, max_quantity_kg__isnull=False)
               .annotate(total=Sum("shipments__quantity_kg", filter=Q(shipments__archived=False)))
               .filter(total__gt=F("max_quantity_kg")).values_list("pk", flat=True))
    over |= set(Alert.objects.filter(rule="licence_exceeded", status=AlertStatus.OPEN,
                                     shipment__licence_id__in=licences).values_list("shipment__licence_id", flat=True))
    return set(Shipment.objects.filter(licence_id__in=over).values_list("pk", flat=True)) if over else set()


def _matched_to_listed(ids: Iterable[Any]) -> set[Any]:
    """The entities matched to those of `ids` that are listed entries (their screening follows the entry)."""
    from entities.models import Entity
    from xref.models import Match

    listed = list(Entity.objects.filter(pk__in=list(ids)).exclude(lists=[]).values_list("pk", flat=True))
    if not listed:
        return set()
    pairs = Match.objects.filter(Q(left_id__in=listed) | Q(right_id__in=listed)).values_list("left_id", "right_id")
    return {pk for pair in pairs for pk in pair} - set(listed)


def _near_suspects(ids: Iterable[Any]) -> set[Any]:
    """The organisations that the shared_* rules may find beside those of `ids` that are case parties: the
    organisations sharing a phone or an address with them, directed or owned by them, or sharing an officer with
    them."""
    from cases.models import CaseParty
    from entities.models import Entity, EntityType, Link, LinkKind
    from entities.normalize import fold

    from .redflags import address_key

    parties = set(CaseParty.objects.filter(entity_id__in=list(ids)).values_list("entity_id", flat=True))
    if not parties:
        return set()
    officer_kinds = (LinkKind.DIRECTORSHIP, LinkKind.OWNERSHIP)
    links = Link.objects.filter(archived=False, kind__in=officer_kinds)
    officers = set(links.filter(target_id__in=parties).values_list("source_id", flat=True))
    found = set(links.filter(source_id__in=parties | officers).values_list("target_id", flat=True))
    organizations = Entity.objects.filter(type=EntityType.ORGANIZATION, archived=False)
    for row in Entity.objects.filter(pk__in=parties).values("agency_id", "phones", "addresses"):
        own = organizations.filter(agency_id=row["agency_id"])
        if row["phones"]:
            found |= set(own.filter(phones__overlap=row["phones"]).values_list("pk", flat=True))
        for address in row["addresses"] or ():
            key = address_key(address)
            words = fold(address.get("text", "") if isinstance(address, dict) else "").split()
            if not key or not words:
                continue
            # the address's longest word narrows the scan; its normalised form decides
            near = own.annotate(text=Cast("addresses", TextField())).filter(text__icontains=max(words, key=len))
            found |= {e.pk for e in near.only("pk", "addresses")
                      if any(address_key(other) == key for other in e.addresses or ())}
    return found - parties


# --- full passes --------------------------------------------------------------------------------------------------

RUN_TASK = "alerts.run"
RUN_PART_TASK = "alerts.run_part"


def run_create(*, agency: Any, sync: bool = False) -> AlertRun:
    """A full pass of the rules over `agency`'s shipments and entities: left to the workers (`alerts.run` through
    the outbox), or run here with `sync`."""
    with transaction.atomic():
        run = AlertRun.objects.create(agency=agency)
        if not sync:
            outbox.enqueue(RUN_TASK, kwargs={"run_id": str(run.pk)}, key=f"alerts-run:{run.pk}")
    return run_sync(run) if sync else run


def run_sync(run: AlertRun) -> AlertRun:
    """The whole run in this process; a failure marks it failed (and is raised)."""
    try:
        run_start(run.pk, enqueue=False)
        run.refresh_from_db()
        for part in range(run.parts):
            run_part(run.pk, part)
    except Exception as exc:
        run_fail(run.pk, exc)
        raise
    run.refresh_from_db()
    return run


def _plan(agency_id: Any) -> list[list[str]]:
    """The run's parts: ranges of the agency's shipment ids and entity ids (archived ones too: their open alerts
    close), as many per kind as its share of ALERT_RUN_PARTS."""
    from entities.models import Entity
    from shipments.models import Shipment

    ids = {kind: [str(pk) for pk in model.objects.filter(agency_id=agency_id).order_by("pk")
                  .values_list("pk", flat=True)]
           for kind, model in (("shipment", Shipment), ("entity", Entity))}
    total = sum(len(v) for v in ids.values())
    plan = []
    for kind, pks in ids.items():
        if not pks:
            continue
        parts = max(1, round(settings.ALERT_RUN_PARTS * len(pks) / total))
        size = -(-len(pks) // parts)
        plan += [[kind, chunk[0], chunk[-1]] for chunk in _chunks(pks, size)]
    return plan


def run_start(run_id: Any, *, enqueue: bool = True) -> bool:
    """Plan a queued run and send its parts (through the outbox). Idempotent: a run already started is left."""
    with transaction.atomic():
        run = AlertRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != RunStatus.QUEUED:
            return False
        run.plan = _plan(run.agency_id)
        run.parts, run.status, run.started_at = len(run.plan), RunStatus.RUNNING, timezone.now()
        if not run.plan:
            run.status, run.finished_at = RunStatus.SUCCEEDED, run.started_at
        run.save()
        if enqueue:
            for part in range(run.parts):
                outbox.enqueue(RUN_PART_TASK, kwargs={"run_id": str(run.pk), "part": part},
                               key=f"alerts-run:{run.pk}:{part}")
    logger.info("alerts run %s: %s parts over agency %s", run.pk, run.parts, run.agency_id)
    return True


def run_part(run_id: Any, part: int) -> bool:
    """Evaluate one part of a running run; the last part ends it. A part already done is not done again."""
    from entities.models import Entity
    from shipments.models import Shipment

    run = AlertRun.objects.filter(pk=run_id).first()
    if run is None or run.status != RunStatus.RUNNING or part in run.done_parts:
        return False
    kind, first, last = run.plan[part]
    model: Any = Shipment if kind == "shipment" else Entity
    ids = list(model.objects.filter(agency_id=run.agency_id, pk__gte=first, pk__lte=last)
               .values_list("pk", flat=True))
    counts = evaluate_shipments(ids) if kind == "shipment" else evaluate_entities(ids)
    with transaction.atomic():
        run = AlertRun.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.RUNNING or part in run.done_parts:
            return False
        run.done_parts = [*run.done_parts, part]
        run.counts = dict(Counter(run.counts) + counts)
        if len(run.done_parts) >= run.parts:
            run.status, run.finished_at = RunStatus.SUCCEEDED, timezone.now()
        run.save()
    logger.info("alerts run %s: part %s (%s %s) done, %s of %s parts; %s", run.pk, part, len(ids), kind,
                len(run.done_parts), run.parts, dict(counts))
    return True


def run_fail(run_id: Any, exc: BaseException) -> None:
    AlertRun.objects.filter(pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        status=RunStatus.FAILED, finished_at=timezone.now(), error=f"{exc.__class__.__name__}: {exc}"[:2000])
