"""Settings of the load bench's web server (bench/load.py): the local settings, and URLs with the raw baselines."""

from config.settings.local import *  # noqa: F403

ROOT_URLCONF = "bench._load_urls"
