"""Sign-in with lockout: every sign-in, failed or not, is counted and audited here, for the API and the admin alike."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.services import record

from .models import User


class LockoutBackend(ModelBackend):
    def authenticate(self, request: Any, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> User | None:
        if username is None or password is None:
            return None
        with transaction.atomic():
            # FOR NO KEY UPDATE serialises the sign-ins of one user (their counters) without blocking the
            # foreign-key checks (FOR KEY SHARE) that every audited write of the user makes at commit while
            # it holds its chain's head: FOR UPDATE here waited on those writers as they waited on it.
            user = User.objects.select_for_update(no_key=True).filter(username=username).first()
            if user is None:
                User().set_password(password)  # same work as a real check, so timing reveals nothing
                record(action="login_failed", object_type="user", object_id=username[:64],
                       changes={"reason": [None, "unknown user"]})
                return None
            if user.is_locked:
                record(action="login_failed", obj=user, actor=user, agency=user.agency,
                       changes={"reason": [None, "locked"]})
                return None
            if not user.check_password(password) or not self.user_can_authenticate(user):
                self._count_failure(user)
                return None
            if user.failed_logins or user.locked_until:
                User.objects.filter(pk=user.pk).update(failed_logins=0, locked_until=None)
                user.failed_logins, user.locked_until = 0, None
            record(action="login", obj=user, actor=user, agency=user.agency)
            return user

    def _count_failure(self, user: User) -> None:
        User.objects.filter(pk=user.pk).update(failed_logins=F("failed_logins") + 1)
        user.refresh_from_db(fields=["failed_logins"])
        changes: dict[str, Any] = {"reason": [None, "bad credentials"],
                                   "failed_logins": [user.failed_logins - 1, user.failed_logins]}
        if user.failed_logins >= settings.AUTH_LOCKOUT_THRESHOLD:
            until = timezone.now() + timedelta(minutes=settings.AUTH_LOCKOUT_MINUTES)
            User.objects.filter(pk=user.pk).update(locked_until=until, failed_logins=0)
            changes["failed_logins"][1] = 0  # the count starts again once the lock ends
            changes["locked_until"] = [None, until.isoformat()]
        record(action="login_failed", obj=user, actor=user, agency=user.agency, changes=changes)
