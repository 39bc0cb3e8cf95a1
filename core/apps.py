from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.core import checks

        from . import idempotency, metrics, outbox, policy

        checks.register(policy.check_registrations)
        assert metrics.TASK_COUNTS_KEY  # connects the Celery signal handlers in every process
        assert outbox.DISPATCH  # registers the outbox's tasks (core.outbox.dispatch, xref.records_changed)
        assert idempotency.purge  # registers core.idempotency.purge
