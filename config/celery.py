import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _use_project_logging(**kwargs) -> None:
    """Workers and beat log as the web does (settings.LOGGING: JSON lines with the task's id and name): a
    receiver of this signal keeps Celery from setting up logging of its own, so it neither replaces the root
    logger's handlers nor applies `-l` (LOG_LEVEL decides)."""
    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
