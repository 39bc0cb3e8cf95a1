from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from django.core import checks

        from core import policy

        from .checkpoints import check_keys

        checks.register(check_keys)
        from .models import AuditEvent

        # Read by the agency's auditors, supervisors and admins; written only by audit.services, never by a user.
        policy.register(AuditEvent, view=policy.audit_events_visible,
                        change=lambda user: policy.audit_events_visible(user).none())
