"""The one write path of watchlists (API.md § Watchlists): what a list import leaves behind.

A list import (`ofac_sdn`; `ftm` whose entities carry topics) writes its entries as persons and organisations of
the agency through the entities' bulk services, each with the list's source in `Entity.lists` (imports.services).
Once the job has run to its end, `watchlist_import` keeps the list itself: one `Watchlist` per agency and source
with its counts, a `WatchlistEntry` per listed record (programmes, remarks, when listed), and the delisting of the
records the list no longer names.

Each import of a list is the whole list: a record that an earlier import listed and this one's file does not name
is delisted (`delisted_at`, the list gone from its `lists`, its open `watchlist_match` alerts closed as
`delisted`); one named again comes back. An entry whose row this import refused is still named by the file and
stays as it was. Only a job that ran to its end delists: a dry run and an atomic job rolled back write nothing, and
a partial job that stopped early (cancelled, a bad file found past its first batches) keeps the entries of the
records it wrote and delists nothing. Every write is audited, under the job's request id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from audit.services import prepare_events, record_many
from core import outbox
from core.bulk import bulk_update, copy_insert
from core.services import audit_change, audit_create
from core.snapshots import snapshot
from entities.models import Entity

from .models import Watchlist, WatchlistEntry, WatchlistKind

DELISTED = "delisted"
CLOSE_CHUNK = 500  # delisted records whose alerts one query closes


def watchlist_import(*, job: Any, entries: Mapping[str, tuple[list[str], str]], delist: bool = True
                     ) -> Watchlist | None:
    """Bring the job's list (`job.source`) up to date with the file it imported: `entries` maps every source_id
    the file names to its (programmes, remarks). None when the file lists nothing and no list of that name exists
    (an FtM file without topics is no list). `delist=False` for a job that stopped early (cancelled, or a bad file
    found past its first batches): the entries of what it wrote, nothing delisted."""
    agency, source, now = job.agency, job.source, timezone.now()
    with transaction.atomic():
        watchlist = Watchlist.objects.select_for_update().filter(agency=agency, source=source).first()
        if watchlist is None and not entries:
            return None
        before = snapshot(watchlist) if watchlist is not None else None
        if watchlist is None:
            watchlist = Watchlist(agency=agency, source=source, kind=_kind(job.kind))
        carrying = Entity.objects.filter(agency=agency, lists__contains=[source]).values_list("pk", "source",
                                                                                               "source_id")
        listed, stale = {}, []
        for pk, entity_source, source_id in carrying:
            if entity_source == source and source_id in entries:
                listed[pk] = entries[source_id]
            else:
                stale.append(pk)
        watchlist.kind, watchlist.imported_at, watchlist.job = _kind(job.kind), now, job
        if before is None:
            watchlist.save()  # its entries refer to it
        events = _entries(watchlist, listed, now)
        delisted = _delist(watchlist, listed, stale, now, events) if delist else []
        _record(agency, job.created_by, events)
        entries_of = WatchlistEntry.objects.filter(watchlist=watchlist)
        watchlist.entries = entries_of.filter(delisted_at__isnull=True).count()
        watchlist.delisted = entries_of.filter(delisted_at__isnull=False).count()
        if before is None:
            Watchlist.objects.filter(pk=watchlist.pk).update(entries=watchlist.entries, delisted=watchlist.delisted)
            audit_create(watchlist, actor=job.created_by)
        else:
            watchlist.save()
            audit_change(watchlist, before, actor=job.created_by)
        close_alerts(delisted)
    return watchlist


def _kind(job_kind: str) -> str:
    return WatchlistKind.OFAC_SDN if job_kind == WatchlistKind.OFAC_SDN else WatchlistKind.FTM


def _entries(watchlist: Watchlist, listed: Mapping[Any, tuple[list[str], str]], now: Any) -> list[dict[str, Any]]:
    """Create the entries of records listed now, refresh the others (programmes, remarks; a delisted one comes
    back); their audit events."""
    existing = {entry.entity_id: entry for entry in WatchlistEntry.objects.filter(watchlist=watchlist)}
    new: list[WatchlistEntry] = []
    changed: list[WatchlistEntry] = []
    events: list[dict[str, Any]] = []
    for entity_id, (programmes, remarks) in listed.items():
        entry = existing.get(entity_id)
        if entry is None:
            new.append(WatchlistEntry(watchlist=watchlist, entity_id=entity_id, programmes=programmes,
                                      remarks=remarks, listed_at=now))
            continue
        changes: dict[str, list[Any]] = {}
        for name, value in (("programmes", programmes), ("remarks", remarks)):
            if getattr(entry, name) != value:
                changes[name] = [getattr(entry, name), value]
                setattr(entry, name, value)
        if entry.delisted_at is not None:  # listed again
            changes["delisted_at"] = [entry.delisted_at.isoformat(), None]
            changes["listed_at"] = [entry.listed_at.isoformat(), now.isoformat()]
            entry.delisted_at, entry.listed_at = None, now
        if changes:
            changed.append(entry)
            events.append(_event("update", entry, changes))
    _insert(new)
    WatchlistEntry.objects.bulk_update(changed, ["programmes", "remarks", "listed_at", "delisted_at"], batch_size=2000)
    events.extend(_event("create", entry, {"watchlist": [None, str(watchlist.pk)],
                                           "entity": [None, str(entry.entity_id)],
                                           "programmes": [None, entry.programmes], "remarks": [None, entry.remarks],
                                           "listed_at": [None, now.isoformat()]}) for entry in new)
    return events


def _insert(entries: list[WatchlistEntry]) -> None:
    """New entries with COPY (a list's thousands at once), their ids taken from the table's sequence first."""
    if not entries:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                       [WatchlistEntry._meta.db_table, len(entries)])
        for entry, (pk,) in zip(entries, cursor.fetchall(), strict=True):
            entry.pk = pk
    copy_insert(WatchlistEntry, entries)


def _delist(watchlist: Watchlist, listed: Mapping[Any, Any], stale: list[Any], now: Any,
            events: list[dict[str, Any]]) -> list[Any]:
    """Delist the entries of records the list no longer names, and take the list off every record that carries
    it without being named (`Entity.lists`); the ids of the records delisted."""
    gone = list(WatchlistEntry.objects.filter(watchlist=watchlist, delisted_at__isnull=True)
                .exclude(entity_id__in=list(listed)))
    for entry in gone:
        entry.delisted_at = now
        events.append(_event("update", entry, {"delisted_at": [None, now.isoformat()]}))
    WatchlistEntry.objects.bulk_update(gone, ["delisted_at"], batch_size=2000)
    unlisted = list(Entity.objects.select_for_update().filter(pk__in=stale))
    entity_events = []
    for entity in unlisted:
        before = list(entity.lists)
        entity.lists = [name for name in entity.lists if name != watchlist.source]
        entity_events.append({"action": "update", "object_type": str(entity.type), "object_id": str(entity.pk),
                              "changes": {"lists": [before, entity.lists]}})
    if unlisted:
        bulk_update(Entity, unlisted, ["lists"])
        events.extend(entity_events)
        by_label: dict[str, list[Any]] = {}
        for entity in unlisted:
            by_label.setdefault(f"entities.{entity.type}", []).append(entity.pk)
        for label, pks in by_label.items():
            outbox.records_changed(label, pks)
    return list(dict.fromkeys([entry.entity_id for entry in gone] + [entity.pk for entity in unlisted]))


def close_alerts(entity_ids: Iterable[Any]) -> int:
    """Close the open `watchlist_match` alerts that name any of these records (delisted) as their listed entry."""
    from alerts.models import Alert, AlertRule
    from alerts.services import close

    ids = [str(pk) for pk in entity_ids]
    closed = 0
    for start in range(0, len(ids), CLOSE_CHUNK):
        naming = models.Q()
        for pk in ids[start:start + CLOSE_CHUNK]:
            naming |= models.Q(related__contains=[{"id": pk}])
        closed += close(Alert.objects.filter(naming, rule=AlertRule.WATCHLIST_MATCH), closed_reason=DELISTED)
    return closed


def _event(action: str, entry: WatchlistEntry, changes: dict[str, list[Any]]) -> dict[str, Any]:
    return {"action": action, "object_type": "watchlistentry", "object_id": str(entry.pk), "changes": changes}


def _record(agency: Any, actor: Any, events: list[dict[str, Any]]) -> None:
    if events:
        record_many(prepare_events(events, agency=agency, actor=actor))
