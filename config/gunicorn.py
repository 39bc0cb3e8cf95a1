"""gunicorn's settings: `gunicorn -c config/gunicorn.py` serves config.wsgi (the container's command).

Environment: GUNICORN_BIND (default 0.0.0.0:8000), WEB_CONCURRENCY (worker processes, default 2). Any other gunicorn
setting can be given in GUNICORN_CMD_ARGS.
"""

import os

wsgi_app = "config.wsgi:application"
bind = [os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
accesslog = "-"  # one line a request on stdout; gunicorn's own lines on stderr
