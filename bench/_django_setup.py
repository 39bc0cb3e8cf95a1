"""A bench script's first import: the project on the path, its local settings with DEBUG off, Django set up.

`python bench/<script>.py` puts this folder first on the path, so a script starts with `import _django_setup`
and imports the project's modules after it."""

import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "false")
warnings.filterwarnings("ignore", message="No directory at")  # whitenoise, when static files are not collected

import django  # noqa: E402

django.setup()
