"""Case rules: references, the status machine, prosecution stages, evidence storage and custody."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import record
from core.services import owning_agency

from .choices import CaseStatus
from .models import CaseCounter, Charge, CustodyEntry, Evidence, Prosecution, ProsecutionStage

FORWARD: dict[str, str] = {
    CaseStatus.OPEN: CaseStatus.INVESTIGATING,
    CaseStatus.INVESTIGATING: CaseStatus.REFERRED,
}


class TransitionNotAllowed(Exception):
    pass


def case_next_reference(*, agency: Any, year: int | None = None) -> str:
    """`<AGENCY>-<YEAR>-<NNNN>`; the counter row is locked so concurrent creations get distinct numbers."""
    year = year or timezone.now().year
    with transaction.atomic():
        CaseCounter.objects.get_or_create(agency=agency, year=year)
        counter = CaseCounter.objects.select_for_update().get(agency=agency, year=year)
        counter.last += 1
        counter.save(update_fields=["last"])
    return f"{agency.code}-{year}-{counter.last:04d}"


def case_transition_action(current: str, target: str) -> str:
    """The policy action a move needs, or TransitionNotAllowed when the status machine forbids it."""
    if current == target:
        return "case.change"
    if target == CaseStatus.CLOSED:
        return "case.close"
    if current == CaseStatus.CLOSED and target == CaseStatus.INVESTIGATING:
        return "case.reopen"
    if FORWARD.get(current) == target:
        return "case.change"
    raise TransitionNotAllowed(f"A case cannot move from {current} to {target}.")


# --- prosecutions --------------------------------------------------------------------------

# The stage a prosecution may move to from each stage (API.md § Prosecutions): forward only, one step at a time,
# except that a verdict may become final without an appeal.
PROSECUTION_NEXT: dict[str, tuple[str, ...]] = {
    ProsecutionStage.INVESTIGATION: (ProsecutionStage.INDICTED,),
    ProsecutionStage.INDICTED: (ProsecutionStage.TRIAL,),
    ProsecutionStage.TRIAL: (ProsecutionStage.VERDICT,),
    ProsecutionStage.VERDICT: (ProsecutionStage.APPEAL, ProsecutionStage.FINAL),
    ProsecutionStage.APPEAL: (ProsecutionStage.FINAL,),
    ProsecutionStage.FINAL: (),
}


def prosecution_stage_move(current: str, target: str) -> bool:
    """Whether `current` → `target` is a move (False when the stage stays); TransitionNotAllowed when forbidden."""
    if current == target:
        return False
    allowed = PROSECUTION_NEXT.get(current, ())
    if target in allowed:
        return True
    stages = list(ProsecutionStage.values)
    if target in stages and current in stages and stages.index(target) < stages.index(current):
        reason = "stages only move forward"
    elif allowed:
        reason = f"the next stage is {' or '.join(allowed)}"
    else:
        reason = f"{current} is the last stage"
    raise TransitionNotAllowed(f"A prosecution cannot move from {current} to {target}: {reason}.")


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
    anything else is hashed here, chunk by chunk. The caller audits the creation.
    """
    limit = settings.EVIDENCE_MAX_BYTES
    if upload.size > limit:
        raise EvidenceTooLarge(f"The file is {upload.size} bytes; evidence files may be at most {limit} bytes.")
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
    except BaseException:
        evidence.file.delete(save=False)
        raise
    return evidence


def evidence_digest_header(evidence: Evidence) -> str:
    """The SHA-256 as an RFC 3230 `Digest` value."""
    return "sha-256=" + base64.b64encode(bytes.fromhex(evidence.sha256)).decode()


@transaction.atomic
def evidence_record_download(*, evidence: Evidence, actor: Any) -> CustodyEntry:
    """Every download is a link of the chain of custody and an `export` event of the case's audit trail."""
    entry = CustodyEntry.objects.create(evidence=evidence, by=actor, action="download")
    record(action="export", obj=evidence, actor=actor, agency=owning_agency(evidence), case_id=evidence.case_id)
    return entry
