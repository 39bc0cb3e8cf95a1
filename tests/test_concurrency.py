"""Sign-ins and audited writes of one user at the same moment: no deadlock, no 500, every write audited.

Real threads, each with its own database connection, against the real PostgreSQL: a sign-in locks
the user's row (its failed-login counters) and appends to the agency's audit chain, while each
write appends to the same chain and, at commit, checks the event's foreign key to that user row.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connections
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import verify_chain
from cases.models import Case, Note

from . import factories

TOKENS = "/api/v1/auth/tokens/"
CASES = "/api/v1/cases/"
PASSWORD = "correct horse battery"
SIGN_INS = 40
WRITES = 40


def run_together(jobs: list[Callable[[], int]]) -> list[int | str]:
    """Start every job at one moment (a barrier), each in its own thread and connection; their statuses."""
    barrier = threading.Barrier(len(jobs), timeout=60)
    statuses: list[int | str] = [0] * len(jobs)

    def run(i: int) -> None:
        try:
            barrier.wait()
            statuses[i] = jobs[i]()
        except Exception as exc:
            statuses[i] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not any(t.is_alive() for t in threads)
    return statuses


@pytest.mark.django_db(transaction=True)
def test_sign_ins_and_writes_of_one_user_at_once_neither_deadlock_nor_lose_an_event(world):
    inv = factories.user(world.a, "investigator", world.a1, username="inv-a1")
    case = factories.case(world.a, world.a1, lead=inv)
    keys = [factories.token(inv) for _ in range(WRITES)]
    # A failed attempt first, so every sign-in also resets the counters on the user's row.
    inv.failed_logins = 1
    inv.save(update_fields=["failed_logins"])

    def sign_in() -> int:
        client = APIClient(REMOTE_ADDR="192.0.2.10", raise_request_exception=False)
        return client.post(TOKENS, {"username": "inv-a1", "password": PASSWORD}, format="json").status_code

    def write(i: int) -> Callable[[], int]:
        def job() -> int:
            client = APIClient(raise_request_exception=False)
            client.credentials(HTTP_AUTHORIZATION=f"Token {keys[i]}")
            if i % 2:
                return client.post(CASES, {"title": f"Concurrent {i}"}, format="json").status_code
            return client.post(f"{CASES}{case.pk}/notes/", {"body": f"note {i}"}, format="json").status_code
        return job

    jobs: list[Callable[[], int]] = []
    for i in range(max(SIGN_INS, WRITES)):  # interleaved, so both kinds start together
        if i < SIGN_INS:
            jobs.append(sign_in)
        if i < WRITES:
            jobs.append(write(i))
    statuses = run_together(jobs)

    assert Counter(statuses) == Counter({201: SIGN_INS + WRITES}), Counter(statuses)
    actions = Counter(AuditEvent.objects.filter(chain=str(world.a.pk)).values_list("action", flat=True))
    assert actions == Counter({"login": SIGN_INS, "token_issued": SIGN_INS, "create": WRITES}), actions
    assert Case.objects.filter(agency=world.a).count() == WRITES // 2 + 1
    assert Note.objects.filter(case=case).count() == WRITES // 2
    written = AuditEvent.objects.filter(chain=str(world.a.pk), action="create")
    assert Counter(written.values_list("object_type", flat=True)) == Counter({"case": WRITES // 2,
                                                                             "note": WRITES // 2})
    result = verify_chain(str(world.a.pk))
    assert (result.ok, result.checked) == (True, SIGN_INS * 2 + WRITES)
    inv.refresh_from_db()
    assert (inv.failed_logins, inv.locked_until) == (0, None)
