"""Cross-referencing (API.md § Cross-referencing, DESIGN.md § Cross-referencing).

`BlockKey` rows are the blocking index: each entity's keys (folded name tokens, phonetic keys, identifiers,
phones, emails, addresses, …), looked up by key so that a record finds its candidates without comparing all
pairs. A `Match` is a scored candidate pair with its features and explanation, and an analyst's decision.
Confirmed matches join entities into identity clusters (`IdentityMember`), shown as `same_as`. `XrefRun` is a
full pass (API `POST /xref/runs/`, `manage.py xref`), `XrefModel` the learned weights of an agency's model.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from core.models import AgencyOwnedModel, BaseModel


class BlockKey(models.Model):
    """One blocking key of one entity. Rewritten whole for an entity when it changes (`xref.matching.index`)."""

    id = models.BigAutoField(primary_key=True)
    entity = models.ForeignKey("entities.Entity", on_delete=models.CASCADE, related_name="+")
    agency = models.ForeignKey("accounts.Agency", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)

    class Meta:
        indexes = [
            models.Index(fields=["key"], name="xref_blockkey_key"),
            models.Index(fields=["entity"], name="xref_blockkey_entity"),
        ]

    def __str__(self) -> str:
        return self.key


class MatchStatus(models.TextChoices):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class Match(BaseModel):
    """A candidate pair scored above the proposal threshold: `left` < `right` (by id), one row per pair ever.
    `archived` when it no longer holds (a record archived, or a re-score below the threshold while pending);
    a decided pair keeps its decision across re-runs (a rejected pair is never proposed again)."""

    left = models.ForeignKey("entities.Entity", on_delete=models.PROTECT, related_name="+")
    right = models.ForeignKey("entities.Entity", on_delete=models.PROTECT, related_name="+")
    left_agency = models.ForeignKey("accounts.Agency", on_delete=models.PROTECT, related_name="+")
    right_agency = models.ForeignKey("accounts.Agency", on_delete=models.PROTECT, related_name="+")
    entity_type = models.CharField(max_length=12, db_index=True)  # person | organization
    score = models.FloatField(db_index=True)
    features = models.JSONField(default=dict, blank=True)
    explanation = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=MatchStatus.choices, default=MatchStatus.PENDING,
                              db_index=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    run = models.ForeignKey("XrefRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name_plural = "matches"
        ordering = ["-score", "id"]
        constraints = [
            models.UniqueConstraint(fields=["left", "right"], name="xref_match_one_per_pair"),
            models.CheckConstraint(condition=models.Q(left__lt=models.F("right")), name="xref_match_ordered"),
            models.CheckConstraint(condition=models.Q(score__gte=0) & models.Q(score__lte=1),
                                   name="xref_match_score_0_1"),
        ]
        indexes = [
            models.Index(fields=["right"], name="xref_match_right"),
            models.Index(fields=["left_agency", "status"], name="xref_match_left_agency"),
            models.Index(fields=["right_agency", "status"], name="xref_match_right_agency"),
        ]

    def __str__(self) -> str:
        return f"{self.left_id} ~ {self.right_id} ({self.score:.2f}, {self.status})"


class IdentityMember(models.Model):
    """An entity's identity cluster: the entities joined to it by confirmed matches, transitively, share
    `cluster`. Entities in no confirmed match have no row."""

    entity = models.OneToOneField("entities.Entity", on_delete=models.CASCADE, primary_key=True,
                                  related_name="identity")
    cluster = models.UUIDField(db_index=True)

    def __str__(self) -> str:
        return f"{self.entity_id} in {self.cluster}"


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class XrefRun(AgencyOwnedModel):
    """A full cross-referencing pass over an agency's records (or one case's parties), split into `parts`
    tasks by blocking key; `progress` is parts done over parts."""

    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    progress = models.FloatField(default=0)
    parts = models.PositiveIntegerField(default=0)
    parts_done = models.PositiveIntegerField(default=0)
    candidates = models.PositiveBigIntegerField(default=0)
    matches = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The parts finished, so that a part delivered twice counts once (parts_done is its length).
    done_parts = ArrayField(models.PositiveIntegerField(), default=list, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"xref run {self.pk} ({self.status})"


class XrefModel(models.Model):
    """The learned parameters of an agency's match model for one entity type (m/u per feature level, prior),
    estimated by EM on the agency's candidate pairs and refined by its decisions. `agency` null: the default."""

    agency = models.ForeignKey("accounts.Agency", on_delete=models.CASCADE, null=True, blank=True,
                               related_name="+")
    entity_type = models.CharField(max_length=12)
    params = models.JSONField(default=dict)
    pairs = models.PositiveIntegerField(default=0, help_text="Candidate pairs it was trained on")
    decisions = models.PositiveIntegerField(default=0, help_text="Decided pairs it was refined with")
    trained_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agency", "entity_type"], nulls_distinct=False,
                                    name="xref_model_one_per_agency_type"),
        ]

    def __str__(self) -> str:
        return f"xref model {self.agency_id or 'default'} {self.entity_type}"


class DeconflictionHit(AgencyOwnedModel):
    """Deconfliction (API.md `GET /xref/hits/`): a match between a record of this agency (`entity`) and one of
    `other_agency`'s. Each side of a cross-agency match has its own hit; a hit tells its agency whom to call and
    the score, and nothing of the other agency's record (`match` is internal: never shown, never filtered on).
    Made, refreshed and withdrawn (`archived`) by the cross-referencing workers, with the match."""

    match = models.ForeignKey(Match, on_delete=models.PROTECT, related_name="hits")
    entity = models.ForeignKey("entities.Entity", on_delete=models.PROTECT, related_name="deconfliction_hits")
    other_agency = models.ForeignKey("accounts.Agency", on_delete=models.PROTECT, related_name="+")
    score = models.FloatField()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["match", "agency"], name="xref_hit_one_per_side"),
        ]
        indexes = [models.Index(fields=["agency", "archived", "-created_at"], name="xref_hit_agency")]

    def __str__(self) -> str:
        return f"hit {self.entity_id} ~ {self.other_agency_id} ({self.score:.2f})"
