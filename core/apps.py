from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.core import checks

        from . import metrics, policy

        checks.register(policy.check_registrations)
        assert metrics.TASK_COUNTS_KEY  # connects the Celery signal handlers in every process
