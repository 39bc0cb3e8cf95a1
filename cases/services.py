"""The one write path of cases and what belongs to them: parties, notes, shares, prosecutions and evidence.

The API's viewsets, the admin, loaders and scripts all write through these functions; the rules they apply are
in `cases.rules`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, cast

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from audit.services import record
from core import outbox, policy
from core import services as core_services
from core.rules import RuleViolation, Violations
from core.services import owning_agency
from core.snapshots import snapshot

from . import rules
from .choices import CaseStatus, CustodyStatus, PartyRole
from .models import Case, CaseCounter, CaseParty, CaseShare, Charge, CustodyEntry, Evidence, Note, Prosecution

# Each service is one transaction: its rules (cases.rules), derived fields, the version bump and the audit event.
# `data` holds parsed values (model instances for relations); a key left out keeps what the record has.
# An update that changes nothing keeps the version and writes no event.

CASE_FIELDS = frozenset({"title", "summary", "status", "priority", "classification", "unit", "lead", "members",
                         "commodities", "opened_on", "tags"})
PARTY_FIELDS = frozenset({"entity", "role", "custody_status", "notes"})
NOTE_FIELDS = frozenset({"body"})
SHARE_FIELDS = frozenset({"agency", "unit", "access"})
PROSECUTION_FIELDS = frozenset({"defendant", "court", "prosecutor_office", "stage", "filed_on", "verdict",
                                "verdict_on", *rules.SENTENCE_FIELDS})
EVIDENCE_FIELDS = frozenset({"title", "kind"})


R = TypeVar("R", bound=models.Model)

def _known(data: Mapping[str, Any], fields: frozenset[str], what: str) -> dict[str, Any]:
    unknown = set(data) - fields
    if unknown:
        raise TypeError(f"A {what} has no field(s) {', '.join(sorted(unknown))}.")
    return dict(data)


def _differs(obj: models.Model, name: str, value: Any) -> bool:
    """Whether writing `value` to `obj.name` would change it (relations compared by id, many-to-many as sets)."""
    field = cast(models.Field, obj._meta.get_field(name))
    if field.many_to_many:
        stored = getattr(obj, name).values_list("pk", flat=True) if not obj._state.adding else []
        current = {str(pk) for pk in stored}
        return current != {str(getattr(v, "pk", v)) for v in value or ()}
    if field.is_relation:
        return getattr(obj, field.attname) != getattr(value, "pk", value)
    return getattr(obj, name) != value


def _changed(obj: models.Model, data: Mapping[str, Any]) -> set[str]:
    return {name for name, value in data.items() if _differs(obj, name, value)}


def _apply(obj: models.Model, data: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """Set the plain fields and foreign keys of `names` on `obj`; returns the many-to-many names left to set."""
    later = []
    for name in names:
        if obj._meta.get_field(name).many_to_many:
            later.append(name)
        else:
            setattr(obj, name, data[name])
    return later


def _archiving(obj: Any, data: Mapping[str, Any], changed: set[str]) -> str | None:
    """'archive' when an update (the admin's edit form) archives the record."""
    return "archive" if "archived" in changed and data["archived"] else None


def _update(obj: R, *, actor: Any, data: Mapping[str, Any], fields: frozenset[str], what: str,
            check: Callable[[dict[str, Any], set[str]], None] | None = None) -> R:
    """The update of a case's own record (party, note, share, evidence): the fields that change, checked by
    `check(data, changed)`, applied, saved and audited (`archive` when it newly archives); nothing when nothing
    changes (the version stays)."""
    data = _known(data, fields, what)
    changed = _changed(obj, data)
    if not changed:
        return obj
    if check is not None:
        check(data, changed)
    before = snapshot(obj)
    _apply(obj, data, changed)
    obj.save()
    core_services.audit_change(obj, before, actor=actor, action=_archiving(obj, data, changed) or "update")
    return obj


def _archive(obj: Any, *, actor: Any) -> Any:
    if not obj.archived:
        core_services.archive(obj, actor=actor)
    return obj


# --- cases ---------------------------------------------------------------------------------


def case_next_reference(*, agency: Any, year: int | None = None) -> str:
    """`<AGENCY>-<YEAR>-<NNNN>`; the counter row is locked so concurrent creations get distinct numbers."""
    year = year or timezone.now().year
    with transaction.atomic():
        CaseCounter.objects.get_or_create(agency=agency, year=year)
        counter = CaseCounter.objects.select_for_update().get(agency=agency, year=year)
        counter.last += 1
        counter.save(update_fields=["last"])
    return f"{agency.code}-{year}-{counter.last:04d}"


def case_check_change(*, actor: Any, case: Case | None, data: Mapping[str, Any]) -> str:
    """Whether `actor` may give a case (None: a new one) the values `data`: the status machine, then access.
    Of an existing case only the fields `data` changes are judged.

    Returns the audit action of the change ('update' or 'transition'). Raises RuleViolation (400), StateConflict
    (409) or PermissionDenied (403; rules.MoveRefused for a status move the role may not make). The admin's form
    calls it in `clean()`, the services before they write.
    """
    changed = dict(data) if case is None else {name: data[name] for name in _changed(case, data)}
    action = "update"
    move = None
    if case is None:
        rules.case_initial_status(changed.get("status"))
    elif "status" in changed and changed["status"] != case.status:
        move = rules.case_status_move(case.status, changed["status"])
        action = "transition"
    _case_access(actor=actor, case=case, changed=changed, move=move)
    return action


def _case_access(*, actor: Any, case: Case | None, changed: Mapping[str, Any], move: str | None) -> None:
    """The one place where the access policy rules on a change of a case's fields (`changed`: only those that
    change): the clearance of a classification, the share limits (what a read-write share may not change, 403)
    and the role a status move needs. A write with no actor is the system's own (a loader, a migration): the
    policy does not apply."""
    if actor is None:
        return
    classification = changed.get("classification")
    if classification is not None and not policy.may_classify(actor, classification):
        raise RuleViolation({"classification": [rules.CLEARANCE_MESSAGE]})
    if case is not None:
        policy.check_case_change(actor, case, changed)
    if case is not None and move is not None and not policy.cases_writable(actor, move).filter(pk=case.pk).exists():
        raise rules.MoveRefused(changed["status"])


@transaction.atomic
def case_create(*, agency: Any, actor: Any, data: Mapping[str, Any]) -> Case:
    """Open a case of `agency`. Unless `data` says otherwise it opens today, in the creator's unit, led by the
    creator (when they are of the agency); its reference is the agency's next."""
    data = _known(data, CASE_FIELDS, "case")
    case_check_change(actor=actor, case=None, data=data)
    data.setdefault("opened_on", timezone.localdate())
    if actor is not None and actor.agency_id == agency.pk:
        if "unit" not in data and actor.unit_id is not None:
            data["unit"] = actor.unit
        data.setdefault("lead", actor)
    case = Case(agency=agency, created_by=actor, reference=case_next_reference(agency=agency))
    related = _apply(case, data, data)
    case.save(force_insert=True)
    for name in related:
        getattr(case, name).set(data[name])
    core_services.audit_create(case, actor=actor)
    return case


def case_update(*, case: Case, actor: Any, data: Mapping[str, Any]) -> Case:
    """Change a case; a status move is audited as `transition` and sets or clears `closed_on`."""
    data = _known(data, CASE_FIELDS, "case")
    changed = _changed(case, data)
    if not changed:
        return case
    action = case_check_change(actor=actor, case=case, data={name: data[name] for name in changed})
    # The rules are checked before anything is written, so a refused change leaves the caller's transaction (the
    # API's, the admin's) as it was, and the writes need no savepoint of their own inside it.
    with transaction.atomic(savepoint=False):
        # Members and commodities are read for the audit only when the change is to them.
        m2m = any(Case._meta.get_field(name).many_to_many for name in changed)
        before = snapshot(case, related=m2m)
        related = _apply(case, data, changed)
        written = [name for name in changed if name not in related]
        if "status" in changed:
            case.closed_on = timezone.localdate() if case.status == CaseStatus.CLOSED else None
            written.append("closed_on")
        case.save(update_fields=[*written, "version", "updated_at"])  # what changed, and what every change moves
        for name in related:
            getattr(case, name).set(data[name])
        core_services.audit_change(case, before, action=action, actor=actor, related=m2m)
    return case


def case_archive(*, case: Case, actor: Any) -> Case:
    with transaction.atomic():
        return _archive(case, actor=actor)


# --- parties, notes, shares ----------------------------------------------------------------


def party_check(*, case: Case, data: Mapping[str, Any]) -> None:
    errors = Violations()
    for name, choices in (("role", PartyRole), ("custody_status", CustodyStatus)):
        if name in data:
            try:
                rules.choice(name, data[name], choices.values)
            except RuleViolation as exc:
                errors.merge(exc)
    if data.get("entity") is not None:
        try:
            rules.party_entity(case_agency_id=case.agency_id, entity=data["entity"])
        except RuleViolation as exc:
            errors.merge(exc)
    errors.raise_if_any()


@transaction.atomic
def party_add(*, case: Case, actor: Any, data: Mapping[str, Any]) -> CaseParty:
    data = _known(data, PARTY_FIELDS, "case party")
    party_check(case=case, data=data)
    party = CaseParty(case=case)
    _apply(party, data, data)
    party.save(force_insert=True)
    core_services.audit_create(party, actor=actor)
    _party_changed(party)
    return party


@transaction.atomic
def party_update(*, party: CaseParty, actor: Any, data: Mapping[str, Any]) -> CaseParty:
    party = _update(party, actor=actor, data=data, fields=PARTY_FIELDS, what="case party",
                    check=lambda data, changed: party_check(case=party.case,
                                                            data={name: data[name] for name in changed}))
    _party_changed(party)
    return party


def party_archive(*, party: CaseParty, actor: Any) -> CaseParty:
    with transaction.atomic():
        _party_changed(_archive(party, actor=actor))
        return party


def _party_changed(party: CaseParty) -> None:
    """A party's role decides which red flags its entity raises around it (the outbox's records_changed: a
    version already handled is not evaluated again)."""
    outbox.records_changed(party._meta.label_lower, [party.pk])


@transaction.atomic
def note_create(*, case: Case, actor: Any, data: Mapping[str, Any]) -> Note:
    """A note of `case` written by `actor`, its author."""
    data = _known(data, NOTE_FIELDS, "note")
    rules.note_body(data.get("body", ""))
    note = Note(case=case, author=actor, body=data["body"])
    note.save(force_insert=True)
    core_services.audit_create(note, actor=actor)
    return note


@transaction.atomic
def note_update(*, note: Note, actor: Any, data: Mapping[str, Any]) -> Note:
    return _update(note, actor=actor, data=data, fields=NOTE_FIELDS, what="note",
                   check=lambda data, changed: rules.note_body(data["body"]))


def note_archive(*, note: Note, actor: Any) -> Note:
    with transaction.atomic():
        return _archive(note, actor=actor)


@transaction.atomic
def share_create(*, case: Case, actor: Any, data: Mapping[str, Any]) -> CaseShare:
    """Share `case` with another agency (or one of its units), read-only or read-write; audited as `share`."""
    data = _known(data, SHARE_FIELDS, "share")
    rules.share_target(case_agency_id=case.agency_id, agency=data.get("agency"), unit=data.get("unit"))
    share = CaseShare(case=case, shared_by=actor)
    _apply(share, data, data)
    share.save(force_insert=True)
    core_services.audit_create(share, actor=actor, action="share")
    return share


@transaction.atomic
def share_update(*, share: CaseShare, actor: Any, data: Mapping[str, Any]) -> CaseShare:
    return _update(share, actor=actor, data=data, fields=SHARE_FIELDS, what="share",
                   check=lambda data, changed: rules.share_target(
                       case_agency_id=share.case.agency_id, agency=data.get("agency", share.agency),
                       unit=data.get("unit", share.unit)))


def share_revoke(*, share: CaseShare, actor: Any) -> CaseShare:
    """Revoking a share archives it: the other agency no longer sees the case."""
    with transaction.atomic():
        return _archive(share, actor=actor)


# --- prosecutions --------------------------------------------------------------------------


def _charges_of(prosecution: Prosecution) -> list[dict[str, str]]:
    return [{"statute": c.statute, "description": c.description} for c in prosecution.charges.all()]


def _charges(charges: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [{"statute": c["statute"], "description": c.get("description") or ""} for c in charges]


def prosecution_check(*, case: Case, prosecution: Prosecution | None, data: Mapping[str, Any]) -> str:
    """The rules of a prosecution given `data` over what it has (None: a new one in `case`): its values, then
    its stage move. Returns the audit action ('update', 'transition'); RuleViolation or StateConflict."""
    if prosecution is not None and "case" in data:
        rules.prosecution_case(current_case_id=prosecution.case_id, case_id=getattr(data["case"], "pk", data["case"]))
    def value(name: str) -> Any:
        if name in data:
            return data[name]
        if prosecution is not None:
            return getattr(prosecution, name)
        return cast(models.Field, Prosecution._meta.get_field(name)).get_default()

    values = {name: value(name) for name in PROSECUTION_FIELDS}
    rules.prosecution_values(values, case_agency_id=case.agency_id)
    if prosecution is not None and rules.prosecution_stage_move(prosecution.stage, values["stage"]):
        return "transition"
    return "update"


@transaction.atomic
def prosecution_create(*, case: Case, actor: Any, data: Mapping[str, Any]) -> Prosecution:
    """A defendant's prosecution in `case`, with its charges (`charges`: a list of {statute, description})."""
    data = _known(data, PROSECUTION_FIELDS | {"charges"}, "prosecution")
    charges = _charges(data.pop("charges", None) or [])
    prosecution_check(case=case, prosecution=None, data=data)
    prosecution = Prosecution(case=case)
    _apply(prosecution, data, data)
    prosecution.save(force_insert=True)
    prosecution_set_charges(prosecution=prosecution, charges=charges)
    core_services.audit_create(prosecution, actor=actor)
    return prosecution


@transaction.atomic
def prosecution_update(*, prosecution: Prosecution, actor: Any, data: Mapping[str, Any]) -> Prosecution:
    """Change a prosecution; `charges`, when given, replace its charges wholesale. A stage move is audited as
    `transition`."""
    data = _known(data, PROSECUTION_FIELDS | {"charges", "case", "archived"}, "prosecution")
    action = prosecution_check(case=prosecution.case, prosecution=prosecution, data=data)
    data.pop("case", None)
    charges = data.pop("charges", None)
    charges = _charges(charges) if charges is not None else None
    changed = _changed(prosecution, data)
    charges_changed = charges is not None and charges != _charges_of(prosecution)
    if not changed and not charges_changed:
        return prosecution
    action = _archiving(prosecution, data, changed) or action
    before = snapshot(prosecution)
    _apply(prosecution, data, changed)
    prosecution.save()
    if charges_changed:
        assert charges is not None
        prosecution_set_charges(prosecution=prosecution, charges=charges)
    core_services.audit_change(prosecution, before, action=action, actor=actor)
    return prosecution


def prosecution_archive(*, prosecution: Prosecution, actor: Any) -> Prosecution:
    with transaction.atomic():
        return _archive(prosecution, actor=actor)


def prosecution_set_charges(*, prosecution: Prosecution, charges: list[dict[str, Any]]) -> None:
    """Replace the prosecution's charges wholesale, keeping the order given."""
    prosecution.charges.all().delete()
    Charge.objects.bulk_create(
        Charge(prosecution=prosecution, seq=seq, statute=charge["statute"], description=charge.get("description", ""))
        for seq, charge in enumerate(charges, start=1)
    )


# --- evidence ------------------------------------------------------------------------------

_SAFE_EXTENSION = re.compile(r"^\.[a-z0-9]{1,10}$")
_MEDIA_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")
HASH_CHUNK = 1024 * 1024


class EvidenceTooLarge(Exception):
    pass


def file_sha256(upload: Any) -> str:
    """SHA-256 of a file, read chunk by chunk (never whole into memory)."""
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks(HASH_CHUNK):
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def evidence_storage_name(evidence: Evidence, original_name: str) -> str:
    """Files are stored under the evidence id: no client-supplied text reaches the file system but a plain extension."""
    extension = os.path.splitext(original_name)[1].lower()
    return f"{evidence.pk.hex}{extension if _SAFE_EXTENSION.match(extension) else ''}"


@transaction.atomic
def evidence_create(*, case: Any, upload: Any, title: str, kind: str = "", actor: Any) -> Evidence:
    """Store an uploaded file as evidence of `case`, with its SHA-256, and open its chain of custody.

    `upload` is a Django UploadedFile; the API's upload handler has hashed it while it streamed in (`upload.sha256`),
    anything else is hashed here, chunk by chunk. Audited as `create`, in the same transaction.
    """
    too_large = rules.evidence_too_large(upload.size, settings.EVIDENCE_MAX_BYTES)
    if too_large:
        raise EvidenceTooLarge(too_large)
    stem, extension = os.path.splitext(os.path.basename(upload.name or ""))
    original_name = stem[:255 - len(extension[:20])] + extension[:20]
    content_type = (upload.content_type or "").strip().lower()
    evidence = Evidence(
        case=case, title=title, kind=kind, original_name=original_name,
        content_type=content_type if _MEDIA_TYPE.match(content_type) and len(content_type) <= 100 else "",
        size=upload.size, sha256=getattr(upload, "sha256", None) or file_sha256(upload), uploaded_by=actor,
    )
    evidence.file.save(evidence_storage_name(evidence, original_name), upload, save=False)
    try:
        evidence.save(force_insert=True)
        CustodyEntry.objects.create(evidence=evidence, by=actor, action="upload")
        core_services.audit_create(evidence, actor=actor)
    except BaseException:
        evidence.file.delete(save=False)
        raise
    return evidence


@transaction.atomic
def evidence_update(*, evidence: Evidence, actor: Any, data: Mapping[str, Any]) -> Evidence:
    """Only the title and kind of evidence change; its file stays as uploaded."""
    return _update(evidence, actor=actor, data=data, fields=EVIDENCE_FIELDS | {"archived"}, what="evidence edit")


def evidence_archive(*, evidence: Evidence, actor: Any) -> Evidence:
    with transaction.atomic():
        return _archive(evidence, actor=actor)


def evidence_digest_header(evidence: Evidence) -> str:
    """The SHA-256 as an RFC 3230 `Digest` value."""
    return "sha-256=" + base64.b64encode(bytes.fromhex(evidence.sha256)).decode()


@transaction.atomic
def evidence_record_download(*, evidence: Evidence, actor: Any) -> CustodyEntry:
    """Every download is a link of the chain of custody and an `export` event of the case's audit trail."""
    entry = CustodyEntry.objects.create(evidence=evidence, by=actor, action="download")
    record(action="export", obj=evidence, actor=actor, agency=owning_agency(evidence), case_id=evidence.case_id)
    return entry
