"""gunicorn's settings: `gunicorn -c config/gunicorn.py` serves config.wsgi (the container's command).

Environment: GUNICORN_BIND (default 0.0.0.0:8000), WEB_CONCURRENCY (worker processes, default 2). Any other gunicorn
setting can be given in GUNICORN_CMD_ARGS. LOG_FORMAT and LOG_LEVEL as the application's; PROMETHEUS_MULTIPROC_DIR
where the workers' metric files go (a new temporary directory when unset). README § Logs and metrics.
"""

import os
import shutil
import tempfile

wsgi_app = "config.wsgi:application"
bind = [os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
accesslog = "-"  # one line a request on stdout; gunicorn's own lines on stderr
# No runtime control socket (gunicornc): it is a file under $HOME, which two servers on one host would share.
control_socket_disable = True

# --- Metrics that add up across the workers --------------------------------------------------------------------
# Each worker process writes its samples to files in this directory and /metrics adds them all up (core.metrics),
# so every scrape sees the whole server, whichever worker answers it. Set before a worker imports prometheus_client.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-multiproc-")
METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server):
    """A previous run's files would be added to this run's counts: start from none."""
    os.makedirs(METRICS_DIR, exist_ok=True)
    for name in os.listdir(METRICS_DIR):
        if name.endswith(".db"):
            os.remove(os.path.join(METRICS_DIR, name))


def post_worker_init(worker):
    """What the worker loaded at its start (modules, settings, URL patterns: hundreds of thousands of objects) lives
    as long as it does: frozen, the garbage collector's full passes no longer walk all of it again, tens of
    milliseconds of the request that triggers one."""
    import gc

    gc.collect()
    gc.freeze()


def child_exit(server, worker):
    """A worker that exited (or was replaced) no longer counts in the live gauges; its counters stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, METRICS_DIR)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)


# --- Logs: gunicorn's own lines as JSON, like the application's (core.logs) ----------------------------------------
# An access line: client address, method, path, status, bytes, duration, user agent, and the request id the
# application answered with.
_level = os.environ.get("LOG_LEVEL", "INFO").upper()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "core.logs.formatter", "fmt": os.environ.get("LOG_FORMAT", "json")}},
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "formatter": "structured", "stream": "ext://sys.stdout"},
        "stderr": {"class": "logging.StreamHandler", "formatter": "structured", "stream": "ext://sys.stderr"},
    },
    "root": {"handlers": ["stderr"], "level": _level},
    "loggers": {
        "gunicorn.error": {"handlers": [], "level": _level, "propagate": True},
        "gunicorn.access": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
    },
}
