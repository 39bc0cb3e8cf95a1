import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import ClassVar, Self, cast

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.http import HttpRequest
from django.utils import timezone

from core.models import BaseModel

from .choices import Clearance, Role


class Agency(BaseModel):
    """The tenant: every record belongs to one agency."""

    code = models.SlugField(max_length=16, unique=True, help_text="Short code, e.g. SSB")
    name = models.CharField(max_length=200)
    contact = models.CharField(
        max_length=300, blank=True, help_text="Desk and phone other agencies call on a deconfliction hit"
    )

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "agencies"

    def __str__(self) -> str:
        return self.code


class Unit(BaseModel):
    """A team inside an agency."""

    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="units")
    code = models.SlugField(max_length=32)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["agency__code", "code"]
        constraints = [models.UniqueConstraint(fields=["agency", "code"], name="unit_code_per_agency")]

    def __str__(self) -> str:
        return f"{self.agency.code}/{self.code}"


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agency = models.ForeignKey(
        Agency, on_delete=models.PROTECT, null=True, blank=True, related_name="users"
    )
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, null=True, blank=True, related_name="users")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    clearance = models.CharField(
        max_length=16, choices=Clearance.choices, default=Clearance.UNCLASSIFIED
    )
    failed_logins = models.PositiveIntegerField(default=0, editable=False)
    locked_until = models.DateTimeField(null=True, blank=True)

    objects: ClassVar["UserManager[Self]"] = UserManager()

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.username

    @property
    def is_locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > timezone.now()


def request_user(request: HttpRequest) -> User:
    """`request.user` typed as our `User`, for code that runs only once the caller is signed in
    (API views behind IsAuthenticated, admin pages behind the admin login)."""
    return cast(User, request.user)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def live(self):
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())

    def by_key(self, key: str):
        return self.filter(key_hash=hash_key(key))


class ApiToken(BaseModel):
    """An API key; only its SHA-256 is stored, the key itself is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=8, editable=False, help_text="First characters, to tell keys apart")
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @classmethod
    def issue(cls, user: User, days: int | None = None) -> tuple["ApiToken", str]:
        key = secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            key_hash=hash_key(key),
            prefix=key[:8],
            expires_at=timezone.now() + timedelta(days=days or settings.API_TOKEN_DAYS),
        )
        return token, key
