"""`make attack`: schemathesis against the published OpenAPI schema, as an investigator and as a viewer.

    .venv/bin/python tools/devenv.py exec -- .venv/bin/python tools/attack.py [--max-examples N]

What it does, start to end:

1. A database of its own, made afresh: `<DATABASE_URL's database>_attack`, migrated, with the demo data set
   (`manage.py load_demo`), what cross-referencing and the red-flag rules make of it (`xref --sync`,
   `alerts --sync`), a watchlist import with a bad row (`import_file --sync`), and two users of the demo agency SSB
   made by `create_user`: `attack-investigator` and `attack-viewer`, each with API tokens from `issue_token`; once
   the server is up, a file of evidence uploaded by the investigator (the demo data has none).
2. The API served by gunicorn (two workers, `DEBUG` off, as deployed) on a free loopback port.
3. For each of the two users, schemathesis runs every operation of `/api/v1/schema/` with generated input, valid
   and invalid (its `fuzzing` and `stateful` phases, `--max-examples` test cases an operation), and checks every
   response: no 5xx (`not_a_server_error`), a status the schema documents for the operation
   (`status_code_conformance`), its content type (`content_type_conformance`), its body
   (`response_schema_conformance`) and its required headers (`response_headers_conformance`, e.g. `ETag`).
   Path parameters are pinned to records the user can see (read from the lists with the user's token), so the
   details, updates and actions reach their logic rather than a 404; records the user cannot see are what the
   generated ids already are.
4. It prints the counts (operations tested, test cases generated, failures by kind) and exits non-zero on any
   failure, error or untested operation.

One operation runs apart, on a token of its own: `DELETE /auth/tokens/current/` revokes the token that calls it,
so run among the others it would turn every later request into a 401.

Reports (schemathesis' JSON, and the server's log) are left in `var/attack/`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "attack"
API = "/api/v1"

# Not run: `negative_data_rejection` and `positive_data_acceptance`. They judge the request, not the response, and
# count as wrong what the API does on purpose: a stale `If-Match` answers 412 before the body is read (taken as
# "invalid input accepted"); an empty filter value is no filter and `page_size` past 500 is capped (API.md); and
# schema-valid input is refused by rules no schema states (a record of another agency, a country code, a status
# move, a depth past 3), so "valid input refused" too.
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance")
PHASES = "fuzzing,stateful"
RUN_SECONDS = int(os.environ.get("ATTACK_RUN_SECONDS", "300"))  # one schemathesis run's time bound
REVOKE_OPERATION = "auth_tokens_current_destroy"  # DELETE /auth/tokens/current/: revokes the caller's own token
USERS = {  # role -> create_user arguments; SSB and its unit `econ` come with the demo data
    "investigator": ["--agency", "SSB", "--unit", "econ", "--role", "investigator", "--clearance", "secret"],
    "viewer": ["--agency", "SSB", "--unit", "econ", "--role", "viewer", "--clearance", "restricted"],
}
TASK_QUEUES = ("default", "imports", "xref", "audit")
WATCHLIST = [  # FollowTheMoney rows: a watchlist of two entries, and a bad row for `/imports/{id}/errors/`
    {"id": "attack-listed-1", "schema": "Person", "properties": {"name": ["Attack Listed Person"],
                                                                 "topics": ["sanction"]}},
    {"id": "attack-listed-2", "schema": "Company", "properties": {"name": ["Attack Listed Trading Ltd"],
                                                                  "jurisdiction": ["hk"], "topics": ["sanction"]}},
    {"id": "attack-bad-row", "schema": "Person", "properties": {"birthDate": ["not a date"]}},
]


def say(message: str) -> None:
    print(f"attack: {message}", flush=True)


# --- the database and the server -------------------------------------------------------------------------------


def attack_database_url(url: str) -> str:
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "enforcement"
    return urlunsplit(parts._replace(path=f"/{name}_attack"))


def recreate_database(url: str) -> None:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    conninfo = re.sub(r"^(pgsql|psql|postgis)://", "postgresql://", url)
    name = conninfo_to_dict(conninfo)["dbname"]
    with psycopg.connect(conninfo, dbname="postgres", autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name))))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))


def manage(*args: str) -> str:
    """A management command, run in this process (Django is set up for the attack database); its stdout."""
    from django.core.management import call_command

    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def prepare_database(env: dict[str, str]) -> dict[str, list[str]]:
    """Migrate, the demo data and what cross-referencing and the rules make of it, a watchlist with a bad row, and
    the two users; each user's two tokens."""
    recreate_database(env["DATABASE_URL"])
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django
    from django.db import connections

    django.setup()
    manage("migrate", "--noinput", "--verbosity", "0")
    manage("load_demo")
    manage("xref", "--sync")  # matches and deconfliction hits
    manage("alerts", "--sync")
    watchlist = OUT / "watchlist.ftm.json"
    watchlist.write_text("".join(json.dumps(row) + "\n" for row in WATCHLIST))
    manage("import_file", str(watchlist), "--kind", "ftm", "--agency", "SSB", "--source", "attack-list", "--sync")
    tokens = {}
    for role, arguments in USERS.items():
        manage("create_user", f"attack-{role}", *arguments)
        tokens[role] = [manage("issue_token", f"attack-{role}").strip().splitlines()[-1] for _ in range(2)]
    connections.close_all()
    return tokens


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(base: str, server: subprocess.Popen, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"attack: the server exited with {server.returncode}; see var/attack/server.log")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise SystemExit("attack: the server did not answer /healthz in time")


def get_json(url: str, token: str) -> Any:
    import requests

    response = requests.get(url, headers={"Authorization": f"Token {token}", "Accept": "application/json"},
                            timeout=30)
    return response.json() if response.status_code == 200 else None


def add_evidence(base: str, token: str) -> None:
    """A file of evidence on the first case of the user's agency that takes one: the demo data set has none."""
    import requests

    agency = get_json(f"{base}{API}/auth/me/", token)["agency"]
    for case in get_json(f"{base}{API}/cases/?page_size=20", token)["results"]:
        if case["agency"] != agency:
            continue
        response = requests.post(f"{base}{API}/cases/{case['id']}/evidence/",
                                 headers={"Authorization": f"Token {token}"},
                                 data={"title": "Seized ledger, page 1", "kind": "document"},
                                 files={"file": ("ledger.txt", b"212 t antimony ingots, 2024-10 to 2026-06\n")},
                                 timeout=30)
        if response.status_code == 201:
            return
    raise SystemExit("attack: no case of the investigator's agency took a file of evidence")


# --- pinning path parameters to visible records ----------------------------------------------------------------


def pin_path_parameters(base: str, schema: dict[str, Any], token: str) -> dict[str, dict[str, str]]:
    """operationId -> {"path.<name>": value} for every operation whose path parameters name records the token sees.

    A parameter's value comes from the list above it (`/cases/{id}/` from `/cases/`, `/cases/{case_pk}/notes/{id}/`
    from `/cases/{case_pk}/notes/` once `case_pk` is chosen), trying the first rows until the rest resolves too; rows
    of the user's own agency first (another agency's, seen through a share, are read-only).
    """
    agency = get_json(f"{base}{API}/auth/me/", token)["agency"]
    lists: dict[str, list[dict[str, Any]]] = {}

    def rows(path: str) -> list[dict[str, Any]]:
        if path not in lists:
            page = get_json(f"{base}{path}?page_size=20", token)
            found = page.get("results", []) if isinstance(page, dict) else []
            lists[path] = sorted(found, key=lambda row: (row.get("agency", agency) != agency,
                                                         bool(row.get("archived"))))
        return lists[path]

    def resolve(template: str, values: dict[str, str]) -> dict[str, str] | None:
        match = re.search(r"\{(\w+)\}", template)
        if match is None:
            return values
        name, prefix = match.group(1), template[:match.start()]
        for row in rows(prefix)[:5]:
            value = row.get(name, row.get("id"))
            if value is None:
                continue
            resolved = resolve(template[:match.start()] + str(value) + template[match.end():],
                               {**values, f"path.{name}": str(value)})
            if resolved is not None:
                return resolved
        return None

    pins = {}
    for path, item in schema["paths"].items():
        if "{" not in path:
            continue
        values = resolve(path, {})
        for operation in item.values():
            if isinstance(operation, dict) and values:
                pins[operation["operationId"]] = values
    return pins


def config_toml(pins: dict[str, dict[str, str]]) -> str:
    lines = []
    for operation_id, values in sorted(pins.items()):
        lines += ["[[operations]]", f"include-operation-id = {json.dumps(operation_id)}",
                  "parameters = { " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in values.items())
                  + " }", ""]
    return "\n".join(lines)


# --- schemathesis ----------------------------------------------------------------------------------------------


def schemathesis(label: str, *, base: str, token: str, config: Path, max_examples: int, only: str | None = None,
                 skip: str | None = None) -> dict[str, Any]:
    report = OUT / f"{label}.json"
    report.unlink(missing_ok=True)
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    command = [st, "--config-file", str(config), "run", f"{base}{API}/schema/",
               "--header", f"Authorization: Token {token}",
               "--checks", ",".join(CHECKS), "--phases", PHASES, "--max-examples", str(max_examples),
               "--workers", "2", "--seed", "1", "--no-color", "--generation-database", "none",
               "--report", "json", "--report-json-path", str(report)]
    if only:
        command += ["--include-operation-id", only]
    if skip:
        command += ["--exclude-operation-id", skip]
    say(f"== {label}: schemathesis {' '.join(command[4:])}".replace(token, "<token>"))
    try:
        subprocess.run(command, cwd=OUT, check=False, timeout=RUN_SECONDS)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"attack: {label} ran past its {RUN_SECONDS} s (ATTACK_RUN_SECONDS)") from None
    if not report.exists():
        raise SystemExit(f"attack: schemathesis wrote no report for {label}")
    return json.loads(report.read_text())


def summarise(label: str, result: dict[str, Any]) -> list[str]:
    """Print one run's counts; return what is wrong with it."""
    operations, cases = result["operations"], result["test_cases"]
    failures = {f"{f['code']} {f['title']}": f["count"] for f in result.get("failures", [])}
    errors = {e["title"]: e["count"] for e in result.get("errors", [])}
    say(f"{label}: {operations['tested']}/{operations['selected']} operations tested, {cases['generated']} test "
        f"cases generated, {cases['with_failures']} with failures; failures by kind: "
        f"{json.dumps(failures) if failures else 'none'}; errors: {json.dumps(errors) if errors else 'none'}; "
        f"{result.get('running_time') or 0:.0f} s")
    problems = [f"{label}: {kind} x{count}" for kind, count in failures.items()]
    problems += [f"{label}: error {title} x{count}" for title, count in errors.items()]
    if operations["tested"] != operations["selected"]:
        problems.append(f"{label}: {operations['selected'] - operations['tested']} operations not tested")
    return problems


# --- the whole run ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("ATTACK_MAX_EXAMPLES", "10")),
                        help="test cases generated per operation and phase (default 10, or ATTACK_MAX_EXAMPLES)")
    opts = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        raise SystemExit("attack: DATABASE_URL and REDIS_URL are needed: run it through `make attack`")
    started = time.monotonic()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)

    env = dict(os.environ, DATABASE_URL=attack_database_url(os.environ["DATABASE_URL"]),
               DJANGO_SETTINGS_MODULE="config.settings.local", DEBUG="false", PYTHONUNBUFFERED="1")
    env.setdefault("TASK_QUEUE_PREFIX", "attack-")  # what the writes send waits in queues no worker of ours reads
    tokens = prepare_database(env)
    say(f"database {urlsplit(env['DATABASE_URL']).path.lstrip('/')} ready in {time.monotonic() - started:.0f} s")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (OUT / "server.log").open("w")
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    server = subprocess.Popen([gunicorn, "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                               "--timeout", "60"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              process_group=0)
    problems: list[str] = []
    try:
        wait_until_up(base, server)
        add_evidence(base, tokens["investigator"][0])
        schema = get_json(f"{base}{API}/schema/?format=json", tokens["investigator"][0])
        every = {op["operationId"] for item in schema["paths"].values() for op in item.values()
                 if isinstance(op, dict) and "operationId" in op}
        tested = cases = 0
        for role, (token, revoked_token) in tokens.items():
            config = OUT / f"{role}.toml"
            config.write_text(config_toml(pin_path_parameters(base, schema, token)))
            main_run = schemathesis(role, base=base, token=token, config=config, max_examples=opts.max_examples,
                                    skip=REVOKE_OPERATION)
            revoke_run = schemathesis(f"{role}-revoke", base=base, token=revoked_token, config=config,
                                      max_examples=opts.max_examples, only=REVOKE_OPERATION)
            for label, result in ((role, main_run), (f"{role}-revoke", revoke_run)):
                problems += summarise(label, result)
            selected = main_run["operations"]["selected"] + revoke_run["operations"]["selected"]
            if selected != len(every):
                problems.append(f"{role}: {selected} operations selected of the schema's {len(every)}")
            tested += main_run["operations"]["tested"] + revoke_run["operations"]["tested"]
            cases += main_run["test_cases"]["generated"] + revoke_run["test_cases"]["generated"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        log.close()
        purge_queues(env)

    logged = [line for line in (OUT / "server.log").read_text().splitlines()
              if "Traceback" in line or "Internal Server Error" in line]
    if logged:
        problems.append(f"the server logged {len(logged)} errors (var/attack/server.log)")
    say(f"total: {len(every)} operations in the schema, each tested as {len(tokens)} users ({tested} operation runs); "
        f"{cases} test cases; {len(problems)} problems; took {time.monotonic() - started:.0f} s")
    if problems:
        say("FAILED:\n  " + "\n  ".join(problems))
        return 1
    say("0 server errors, 0 responses breaking the schema")
    return 0


def purge_queues(env: dict[str, str]) -> None:
    """Drop what the writes sent to the broker: no worker of this run consumes it."""
    import redis

    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(env["REDIS_URL"])
        client.delete(*(env["TASK_QUEUE_PREFIX"] + queue for queue in TASK_QUEUES))


if __name__ == "__main__":
    sys.exit(main())
