import uuid

from django.db import models


class Action(models.TextChoices):
    CREATE = "create"
    UPDATE = "update"
    ARCHIVE = "archive"
    TRANSITION = "transition"
    SHARE = "share"
    VIEW = "view"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    TOKEN_ISSUED = "token_issued"
    TOKEN_REVOKED = "token_revoked"
    IMPORT = "import"
    DECISION = "decision"
    EXPORT = "export"


GLOBAL_CHAIN = "global"


class ChainHead(models.Model):
    """The tip of one agency's chain; locking its row serialises writers so the chain cannot fork."""

    chain = models.CharField(max_length=40, primary_key=True)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="")

    def __str__(self) -> str:
        return f"{self.chain}@{self.last_seq}"


class AuditEvent(models.Model):
    """Append-only and hash-chained per agency; PostgreSQL refuses UPDATE and DELETE on this table."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    chain = models.CharField(max_length=40, help_text="Agency id, or 'global'")
    seq = models.BigIntegerField()
    at = models.DateTimeField(db_index=True)
    agency_code = models.CharField(max_length=16, blank=True)
    actor_id = models.UUIDField(null=True, blank=True)
    actor = models.CharField(max_length=150, blank=True, help_text="Username, frozen at the time")
    action = models.CharField(max_length=20, choices=Action.choices)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    case_id = models.UUIDField(null=True, blank=True, db_index=True, help_text="Case this event belongs to")
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["chain", "-seq"]
        # (chain, seq) serves lookups by chain as well
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_seq_per_chain")]
        # Plain b-trees: `db_index` on a text column adds a pattern-ops index no query here uses.
        indexes = [models.Index(fields=[name], name=f"audit_{name}") for name in ("action", "object_type", "object_id")]

    def __str__(self) -> str:
        return f"{self.chain}#{self.seq} {self.action} {self.object_type}"


class AuditCheckpoint(models.Model):
    """A chain's head (seq, hash) at a moment, signed with an Ed25519 key the database does not hold
    (audit.checkpoints). Append-only like the events: PostgreSQL refuses UPDATE, DELETE and TRUNCATE here."""

    chain = models.CharField(max_length=40, help_text="Agency id, or 'global'")
    agency_code = models.CharField(max_length=16, blank=True)
    seq = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    at = models.DateTimeField()
    key_id = models.CharField(max_length=64, help_text="Fingerprint of the public key that verifies the signature")
    signature = models.CharField(max_length=128, help_text="Ed25519 signature of the checkpoint's text, base64")

    class Meta:
        ordering = ["chain", "-seq"]
        # One checkpoint per head position, whoever writes it (two runs at once, a rerun of the task).
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_checkpoint_per_seq")]

    def __str__(self) -> str:
        return f"{self.chain}@{self.seq} ({self.key_id})"
