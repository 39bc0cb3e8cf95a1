from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from accounts.choices import Clearance
from core.models import AgencyOwnedModel, BaseModel

from .choices import CaseStatus, CustodyStatus, PartyRole, Priority, ShareAccess


class Commodity(models.Model):
    """Reference data: a controlled mineral, looked up by its code."""

    code = models.SlugField(max_length=32, primary_key=True)
    name = models.CharField(max_length=100)
    hs_codes = ArrayField(models.CharField(max_length=10), default=list, blank=True)
    control_regime = models.CharField(max_length=200, blank=True)
    controlled_since = models.DateField(null=True, blank=True)
    licence_required = models.BooleanField(default=True)
    reference_value_per_kg = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "commodities"

    def __str__(self) -> str:
        return self.name


class CaseCounter(models.Model):
    """The last reference number given per agency and year; its row is locked to hand out the next."""

    agency = models.ForeignKey("accounts.Agency", on_delete=models.PROTECT)
    year = models.PositiveIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agency", "year"], name="case_counter_per_year")]

    def __str__(self) -> str:
        return f"{self.agency_id}/{self.year}: {self.last}"


class Case(AgencyOwnedModel):
    reference = models.CharField(max_length=32, unique=True, editable=False)
    title = models.CharField(max_length=300)
    summary = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=CaseStatus.choices, default=CaseStatus.OPEN, db_index=True)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.MEDIUM, db_index=True)
    classification = models.CharField(
        max_length=16, choices=Clearance.choices, default=Clearance.RESTRICTED, db_index=True
    )
    unit = models.ForeignKey("accounts.Unit", on_delete=models.PROTECT, null=True, blank=True, related_name="cases")
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="led_cases"
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="member_cases")
    commodities = models.ManyToManyField(Commodity, blank=True, related_name="cases")
    opened_on = models.DateField(null=True, blank=True)
    closed_on = models.DateField(null=True, blank=True)
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-opened_on", "-created_at"]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"


class CaseParty(BaseModel):
    """An entity of the master index taking part in a case, with its role and custody."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="parties")
    entity = models.ForeignKey("entities.Entity", on_delete=models.PROTECT, related_name="case_parties")
    role = models.CharField(max_length=16, choices=PartyRole.choices, default=PartyRole.SUSPECT)
    custody_status = models.CharField(
        max_length=16, choices=CustodyStatus.choices, default=CustodyStatus.AT_LARGE
    )
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "case parties"

    def __str__(self) -> str:
        return f"{self.entity} as {self.role}"


class Note(BaseModel):
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="notes")
    body = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.body[:60]


class CaseShare(BaseModel):
    """A case made visible to another agency (or one of its units), read-only or read-write."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="shares")
    agency = models.ForeignKey("accounts.Agency", on_delete=models.PROTECT, related_name="shared_cases")
    unit = models.ForeignKey("accounts.Unit", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    access = models.CharField(max_length=8, choices=ShareAccess.choices, default=ShareAccess.READ)
    shared_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.case.reference} → {self.agency.code} ({self.access})"


class ProsecutionStage(models.TextChoices):
    INVESTIGATION = "investigation"
    INDICTED = "indicted"
    TRIAL = "trial"
    VERDICT = "verdict"
    APPEAL = "appeal"
    FINAL = "final"


class Verdict(models.TextChoices):
    PENDING = "pending"
    CONVICTED = "convicted"
    ACQUITTED = "acquitted"
    DISMISSED = "dismissed"


class Prosecution(BaseModel):
    """A defendant's prosecution in a case; its stage only moves forward."""

    snapshot_children = ("charges",)  # the charges are part of the prosecution: core.snapshots audits them with it

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="prosecutions")
    defendant = models.ForeignKey("entities.Entity", on_delete=models.PROTECT, related_name="prosecutions")
    court = models.CharField(max_length=200, blank=True)
    prosecutor_office = models.CharField(max_length=200, blank=True)
    stage = models.CharField(max_length=16, choices=ProsecutionStage.choices, default=ProsecutionStage.INVESTIGATION,
                             db_index=True)
    filed_on = models.DateField(null=True, blank=True)
    verdict = models.CharField(max_length=12, choices=Verdict.choices, default=Verdict.PENDING, db_index=True)
    verdict_on = models.DateField(null=True, blank=True)
    custody_months = models.PositiveIntegerField(null=True, blank=True)
    fine_amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    fine_currency = models.CharField(max_length=3, blank=True)
    confiscation = models.TextField(blank=True)

    class Meta:
        ordering = ["case", "created_at"]

    def __str__(self) -> str:
        return f"{self.defendant} ({self.stage})"


class Charge(models.Model):
    prosecution = models.ForeignKey(Prosecution, on_delete=models.CASCADE, related_name="charges")
    seq = models.PositiveSmallIntegerField(default=0)
    statute = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["prosecution", "seq"]

    def __str__(self) -> str:
        return self.statute


class Evidence(BaseModel):
    """A file attached to a case; its SHA-256 is computed on upload and every access is logged."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="evidence")
    title = models.CharField(max_length=300)
    kind = models.CharField(max_length=50, blank=True)
    file = models.FileField(upload_to="evidence/%Y/%m/")
    original_name = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, db_index=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "evidence"

    def __str__(self) -> str:
        return self.title


class CustodyEntry(models.Model):
    """One link of an evidence item's chain of custody (upload, download, …)."""

    evidence = models.ForeignKey(Evidence, on_delete=models.PROTECT, related_name="custody")
    at = models.DateTimeField(auto_now_add=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=20)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["evidence", "at"]
        verbose_name_plural = "custody entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} by {self.by}"
