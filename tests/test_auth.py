"""Authentication from the client's side: tokens, lockout, `me`, the audit of sign-ins, and the account commands."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from accounts.models import Agency, ApiToken, Unit, User
from accounts.services import user_unlock
from audit.models import GLOBAL_CHAIN, AuditEvent
from audit.services import verify_chain

from . import factories

if TYPE_CHECKING:
    from rest_framework.response import _MonkeyPatchedResponse  # stub-only: what APIClient returns

TOKENS = "/api/v1/auth/tokens/"
CURRENT = "/api/v1/auth/tokens/current/"
ME = "/api/v1/auth/me/"
PASSWORD = "correct horse battery"  # what tests.factories.user sets


def sign_in(username: str, password: str, **extra) -> _MonkeyPatchedResponse:
    return APIClient().post(TOKENS, {"username": username, "password": password}, format="json", **extra)


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def events(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**filters).order_by("chain", "seq"))


def assert_401_json(response) -> None:
    assert response.status_code == 401, response.content
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()


# --- POST /auth/tokens/ --------------------------------------------------------------------------


def test_sign_in_issues_a_token_with_its_expiry(investigator):
    before = timezone.now()
    response = sign_in("inv-a1", PASSWORD)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    assert isinstance(body["token"], str) and len(body["token"]) >= 32
    expires = parse_datetime(body["expires_at"])
    assert expires is not None and expires.tzinfo is not None
    assert before + timedelta(days=30) - timedelta(minutes=1) <= expires <= timezone.now() + timedelta(days=30)


def test_sign_in_token_days_follow_settings(investigator, settings):
    settings.API_TOKEN_DAYS = 3
    body = sign_in("inv-a1", PASSWORD).json()
    expires = parse_datetime(body["expires_at"])
    assert expires is not None
    assert abs(expires - (timezone.now() + timedelta(days=3))) < timedelta(minutes=1)


def test_wrong_password_is_401_json(investigator):
    response = sign_in("inv-a1", "not the password")
    assert_401_json(response)
    assert "Token" in response["WWW-Authenticate"]
    assert not ApiToken.objects.filter(user=investigator).exists()


def test_unknown_user_is_401_and_indistinguishable_from_a_wrong_password(investigator):
    unknown = sign_in("nobody-here", PASSWORD)
    wrong = sign_in("inv-a1", "not the password")
    assert_401_json(unknown)
    assert unknown.json() == wrong.json()


def test_inactive_user_cannot_sign_in(investigator):
    User.objects.filter(pk=investigator.pk).update(is_active=False)
    assert_401_json(sign_in("inv-a1", PASSWORD))


def test_user_without_a_usable_password_cannot_sign_in(world):
    call_command("create_user", "nopw", "--agency", "SSB", "--role", "viewer", stdout=io.StringIO())
    assert_401_json(sign_in("nopw", "x"))
    assert_401_json(sign_in("nopw", "!"))  # what an unusable password hash starts with


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "inv-a1"},
        {"password": PASSWORD},
        {"username": "", "password": PASSWORD},
        {"username": ["inv-a1"], "password": PASSWORD},
        {"username": "inv-a1", "password": {"x": 1}},
        {"username": "u" * 151, "password": PASSWORD},
        [],
        ["inv-a1", PASSWORD],
        "inv-a1",
    ],
    ids=["empty", "no-password", "no-username", "blank-username", "username-list", "password-object",
         "username-too-long", "array", "array-of-strings", "string"],
)
def test_malformed_sign_in_body_is_400(investigator, body):
    response = APIClient().post(TOKENS, body, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert not ApiToken.objects.exists()


def test_sign_in_with_invalid_json_is_400(investigator):
    response = APIClient().post(TOKENS, '{"username": "inv-a1", "password": ', content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()


def test_malformed_body_names_the_missing_fields(investigator):
    response = APIClient().post(TOKENS, {}, format="json")
    assert set(response.json()) == {"username", "password"}


# --- using a token -------------------------------------------------------------------------------


def test_the_token_authenticates_api_calls(investigator):
    key = sign_in("inv-a1", PASSWORD).json()["token"]
    response = with_token(key).get(ME)
    assert response.status_code == 200
    assert response.json()["username"] == "inv-a1"
    assert with_token(key).get("/api/v1/cases/").status_code == 200


def test_without_or_with_a_bad_token_calls_are_401(investigator):
    assert_401_json(APIClient().get(ME))
    assert_401_json(APIClient().get("/api/v1/cases/"))
    assert_401_json(with_token("not-a-real-key").get(ME))
    for header in ("Token", "Token a b", "Token " + "x" * 5000):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        assert_401_json(client.get(ME))


def test_only_the_sha256_of_a_key_is_stored(investigator):
    key = sign_in("inv-a1", PASSWORD).json()["token"]
    token = ApiToken.objects.get(user=investigator)
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert token.prefix == key[:8]
    # Nowhere in the database — no column of any table, the audit trail included — holds the key itself.
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = [row[0] for row in cursor.fetchall()]
        assert "accounts_apitoken" in tables and "audit_auditevent" in tables
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{table}" t WHERE strpos(row_to_json(t)::text, %s) > 0', [key])
            assert cursor.fetchone()[0] == 0, f"the plaintext key is stored in {table}"


def test_an_expired_token_is_401(investigator):
    key = sign_in("inv-a1", PASSWORD).json()["token"]
    client = with_token(key)
    assert client.get(ME).status_code == 200
    ApiToken.objects.filter(user=investigator).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_401_json(client.get(ME))


def test_a_token_authenticates_exactly_when_the_queryset_calls_it_live(world):
    """The authentication's own statement and `ApiToken.objects.live()` say the same of every state of a token, and
    the user it answers comes with the agency and unit the ORM reads (none when the user has none)."""
    from accounts.authentication import live_token
    from accounts.services import token_issue

    now = timezone.now()
    cases = [("live", {}), ("expired", {"expires_at": now - timedelta(seconds=1)}),
             ("revoked", {"revoked_at": now}), ("expiring", {"expires_at": now + timedelta(seconds=30)})]
    users = [factories.user(world.a, "investigator", world.a1, username="tok-unit"),
             factories.user(world.b, "auditor", None, username="tok-nounit"),
             factories.user(None, "agency_admin", username="tok-root", is_superuser=True)]
    seen = []
    for user in users:
        for name, change in cases:
            _, key = token_issue(user=user)
            ApiToken.objects.by_key(key).update(**change)
            token = live_token(key)
            expected = ApiToken.objects.live().by_key(key).select_related("user", "user__agency", "user__unit").first()
            assert (token is None) == (expected is None), (user.username, name)
            seen.append((user.username, name, token is not None))
            if token is None:
                continue
            assert (token.pk, token.user.pk) == (expected.pk, expected.user.pk)
            with CaptureQueriesContext(connection) as reads:
                assert (token.user.agency, token.user.unit) == (expected.user.agency, expected.user.unit)
                assert (token.user.role, token.user.clearance) == (expected.user.role, expected.user.clearance)
            assert len(reads) == 0
    assert [alive for *_, alive in seen] == [True, False, False, True] * 3
    assert live_token("not-a-key") is None


def test_delete_current_revokes_only_that_token(investigator):
    first = sign_in("inv-a1", PASSWORD).json()["token"]
    second = sign_in("inv-a1", PASSWORD).json()["token"]
    client = with_token(first)
    response = client.delete(CURRENT)
    assert response.status_code == 204
    assert ApiToken.objects.by_key(first).get().revoked_at is not None
    assert_401_json(client.get(ME))
    assert_401_json(client.delete(CURRENT))
    assert with_token(second).get(ME).status_code == 200


def test_delete_current_without_a_token_is_401():
    assert_401_json(APIClient().delete(CURRENT))


def test_me_describes_the_caller(world, client_for):
    user = factories.user(world.a, "analyst", world.a2, clearance="confidential", username="ana")
    response = client_for(user).get(ME)
    assert response.status_code == 200
    assert response.json() == {"username": "ana", "agency": "SSB", "unit": "cyber", "role": "analyst",
                               "clearance": "confidential"}


def test_me_without_a_unit(world, client_for):
    user = factories.user(world.b, "auditor", None, clearance="restricted", username="aud-b")
    assert client_for(user).get(ME).json() == {"username": "aud-b", "agency": "ASB", "unit": None,
                                               "role": "auditor", "clearance": "restricted"}


# --- lockout -------------------------------------------------------------------------------------


def fail(username: str, times: int) -> None:
    for _ in range(times):
        assert sign_in(username, "wrong password").status_code == 401


def test_five_consecutive_failures_lock_the_account_for_30_minutes(investigator):
    fail("inv-a1", 4)
    investigator.refresh_from_db()
    assert not investigator.is_locked
    fail("inv-a1", 1)
    investigator.refresh_from_db()
    assert investigator.is_locked
    assert abs(investigator.locked_until - (timezone.now() + timedelta(minutes=30))) < timedelta(minutes=1)
    # The right password no longer helps, and issues nothing.
    assert_401_json(sign_in("inv-a1", PASSWORD))
    assert not ApiToken.objects.filter(user=investigator).exists()
    locked = events(action="login_failed", actor="inv-a1")[-1]
    assert locked.changes["reason"] == [None, "locked"]


def test_a_lock_ends_when_its_time_is_up(investigator):
    fail("inv-a1", 5)
    assert_401_json(sign_in("inv-a1", PASSWORD))
    User.objects.filter(pk=investigator.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    response = sign_in("inv-a1", PASSWORD)
    assert response.status_code == 201
    investigator.refresh_from_db()
    assert investigator.locked_until is None and investigator.failed_logins == 0


def test_an_unlocked_account_signs_in_again(investigator, world):
    admin = factories.user(world.a, "agency_admin", username="admin-a")
    fail("inv-a1", 5)
    assert_401_json(sign_in("inv-a1", PASSWORD))
    user_unlock(user=investigator, actor=admin)
    assert sign_in("inv-a1", PASSWORD).status_code == 201
    unlock = events(action="update", object_type="user", object_id=str(investigator.pk))[-1]
    assert set(unlock.changes) == {"locked_until"} and unlock.changes["locked_until"][1] is None
    assert unlock.actor == "admin-a"


def test_failures_must_be_consecutive(investigator):
    fail("inv-a1", 4)
    assert sign_in("inv-a1", PASSWORD).status_code == 201
    fail("inv-a1", 4)
    investigator.refresh_from_db()
    assert not investigator.is_locked
    assert sign_in("inv-a1", PASSWORD).status_code == 201


def test_failures_on_one_account_do_not_lock_another(investigator, world):
    other = factories.user(world.a, "investigator", world.a1, username="inv-other")
    fail("inv-a1", 5)
    assert sign_in("inv-other", PASSWORD).status_code == 201
    other.refresh_from_db()
    assert not other.is_locked


def test_lockout_threshold_and_duration_are_configurable(investigator, settings):
    settings.AUTH_LOCKOUT_THRESHOLD = 2
    settings.AUTH_LOCKOUT_MINUTES = 5
    fail("inv-a1", 1)
    assert sign_in("inv-a1", PASSWORD).status_code == 201  # one failure, then success: resets the count
    fail("inv-a1", 2)
    investigator.refresh_from_db()
    assert investigator.is_locked
    assert abs(investigator.locked_until - (timezone.now() + timedelta(minutes=5))) < timedelta(minutes=1)
    assert_401_json(sign_in("inv-a1", PASSWORD))


# --- the audit of signing in ---------------------------------------------------------------------


def test_sign_in_and_token_lifecycle_are_audited(investigator, world):
    chain = str(world.a.pk)
    response = sign_in("inv-a1", PASSWORD, HTTP_X_REQUEST_ID="signin-req-1")
    key = response.json()["token"]
    token = ApiToken.objects.by_key(key).get()

    login = events(chain=chain, action="login")
    assert len(login) == 1
    assert (login[0].actor, login[0].object_type, login[0].object_id) == ("inv-a1", "user", str(investigator.pk))
    issued = events(chain=chain, action="token_issued")
    assert len(issued) == 1
    assert (issued[0].actor, issued[0].object_type, issued[0].object_id) == ("inv-a1", "apitoken", str(token.pk))
    assert issued[0].changes["prefix"] == [None, key[:8]]
    # One request, one request id on every event it wrote.
    assert login[0].request_id == issued[0].request_id == "signin-req-1"
    assert issued[0].seq == login[0].seq + 1
    assert login[0].ip == "127.0.0.1"

    assert with_token(key).delete(CURRENT, HTTP_X_REQUEST_ID="revoke-req-1").status_code == 204
    revoked = events(chain=chain, action="token_revoked")
    assert len(revoked) == 1
    assert (revoked[0].actor, revoked[0].object_id, revoked[0].request_id) == ("inv-a1", str(token.pk),
                                                                               "revoke-req-1")
    assert verify_chain(chain).ok


def test_failed_sign_ins_are_audited(investigator, world):
    fail("inv-a1", 1)
    sign_in("ghost", "whatever")
    failed = events(chain=str(world.a.pk), action="login_failed")
    assert len(failed) == 1
    assert failed[0].actor == "inv-a1"
    assert failed[0].object_id == str(investigator.pk)
    assert failed[0].changes["reason"] == [None, "bad credentials"]
    assert failed[0].changes["failed_logins"] == [0, 1]
    # An unknown name belongs to no agency: it is recorded on the global chain.
    ghost = events(chain=GLOBAL_CHAIN, action="login_failed", object_id="ghost")
    assert len(ghost) == 1
    assert ghost[0].changes["reason"] == [None, "unknown user"]
    assert not events(action="login")
    assert not events(action="token_issued")


def test_the_locking_failure_records_the_lock(investigator, world):
    fail("inv-a1", 5)
    failed = events(chain=str(world.a.pk), action="login_failed")
    assert len(failed) == 5
    assert "locked_until" in failed[-1].changes
    assert all("locked_until" not in e.changes for e in failed[:-1])


# --- management commands -------------------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_create_agency_is_idempotent():
    assert "created" in run("create_agency", "NCB", "Narcotics Control Bureau", "--contact", "desk 1, 555")
    assert "exists" in run("create_agency", "NCB", "Narcotics Control Bureau", "--contact", "desk 1, 555")
    assert Agency.objects.filter(code="NCB").count() == 1
    agency = Agency.objects.get(code="NCB")
    assert (agency.name, agency.contact) == ("Narcotics Control Bureau", "desk 1, 555")
    assert AuditEvent.objects.filter(chain=str(agency.pk)).count() == 1
    # Running again with a new name updates it, still one agency.
    run("create_agency", "NCB", "Narcotics Bureau")
    agency.refresh_from_db()
    assert (agency.name, agency.contact) == ("Narcotics Bureau", "desk 1, 555")
    assert Agency.objects.filter(code="NCB").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("args", [("bad code!", "Name"), ("X" * 17, "Name"), ("", "Name"), ("NCB", "  ")])
def test_create_agency_refuses_bad_input(args):
    with pytest.raises(CommandError):
        run("create_agency", *args)
    assert not Agency.objects.exists()


def test_create_unit_is_idempotent(world):
    assert "created" in run("create_unit", "SSB", "finance", "Financial crimes")
    assert "exists" in run("create_unit", "SSB", "finance", "Financial crimes")
    assert Unit.objects.filter(agency=world.a, code="finance").count() == 1
    # The same unit code in another agency is another unit.
    run("create_unit", "ASB", "finance", "ASB finance")
    assert Unit.objects.filter(code="finance").count() == 2


def test_create_unit_refuses_bad_input(world):
    with pytest.raises(CommandError, match="NOPE"):
        run("create_unit", "NOPE", "finance", "Financial crimes")
    with pytest.raises(CommandError):
        run("create_unit", "SSB", "bad unit!", "Name")
    assert not Unit.objects.filter(code="finance").exists()


def test_create_user_is_idempotent(world):
    args = ("create_user", "alice", "--agency", "SSB", "--role", "investigator", "--unit", "econ",
            "--clearance", "confidential", "--password", "s3cret-pass-phrase")
    assert "created" in run(*args)
    assert "updated" in run(*args)
    assert User.objects.filter(username="alice").count() == 1
    user = User.objects.get(username="alice")
    assert (user.agency, user.unit, user.role, user.clearance) == (world.a, world.a1, "investigator",
                                                                    "confidential")
    assert user.check_password("s3cret-pass-phrase")
    # Without --password a later run keeps the password.
    run("create_user", "alice", "--agency", "SSB", "--role", "supervisor")
    user.refresh_from_db()
    assert user.role == "supervisor" and user.check_password("s3cret-pass-phrase")
    assert sign_in("alice", "s3cret-pass-phrase").status_code == 201


@pytest.mark.parametrize(
    "args, needle",
    [
        (("--agency", "NOPE", "--role", "viewer"), "NOPE"),
        (("--agency", "SSB", "--role", "emperor"), "emperor"),
        (("--agency", "SSB", "--role", "viewer", "--clearance", "cosmic"), "cosmic"),
        (("--agency", "SSB", "--role", "viewer", "--unit", "ports"), "ports"),  # a unit of ASB
        (("--agency", "SSB", "--role", "viewer", "--unit", "nope"), "nope"),
    ],
    ids=["unknown-agency", "bad-role", "bad-clearance", "unit-of-another-agency", "unknown-unit"],
)
def test_create_user_refuses_bad_input(world, args, needle):
    with pytest.raises(CommandError, match=needle):
        run("create_user", "bob", *args)
    assert not User.objects.filter(username="bob").exists()


def test_create_user_will_not_move_a_user_to_another_agency(world):
    run("create_user", "carol", "--agency", "SSB", "--role", "viewer")
    with pytest.raises(CommandError, match="carol"):
        run("create_user", "carol", "--agency", "ASB", "--role", "viewer")
    assert User.objects.get(username="carol").agency == world.a


def test_issue_token_prints_the_key_alone_and_it_works(world):
    run("create_user", "dave", "--agency", "ASB", "--role", "analyst", "--unit", "ports")
    out = run("issue_token", "dave")
    key = out.strip()
    assert out == key + "\n"
    assert len(out.splitlines()) == 1 and " " not in key
    response = with_token(key).get(ME)
    assert response.status_code == 200
    assert response.json()["username"] == "dave"
    token = ApiToken.objects.by_key(key).get()
    assert token.user.username == "dave"
    assert abs(token.expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    # Twice: a second, independent key; both work.
    second = run("issue_token", "dave", "--days", "2").strip()
    assert second != key
    assert with_token(second).get(ME).status_code == 200 and with_token(key).get(ME).status_code == 200
    assert abs(ApiToken.objects.by_key(second).get().expires_at - (timezone.now() + timedelta(days=2))) \
        < timedelta(minutes=1)
    assert AuditEvent.objects.filter(chain=str(world.b.pk), action="token_issued").count() == 2


@pytest.mark.parametrize("args", [("nobody",), ("inv-a1", "--days", "0"), ("inv-a1", "--days", "-3"),
                                  ("inv-a1", "--days", "many")])
def test_issue_token_refuses_bad_input(investigator, args):
    with pytest.raises(CommandError):
        run("issue_token", *args)
    assert not ApiToken.objects.exists()


def test_issue_token_refuses_an_inactive_user(investigator):
    User.objects.filter(pk=investigator.pk).update(is_active=False)
    with pytest.raises(CommandError, match="inactive"):
        run("issue_token", "inv-a1")


@pytest.mark.django_db(transaction=True)
def test_a_command_on_bad_input_exits_non_zero_with_a_message(world):
    """From a shell: a non-zero exit status and the message on stderr, nothing on stdout.

    The command runs against the suite's own database, however DATABASE_URL names the server (a host and
    port, or a unix socket as the embedded PostgreSQL gives it): first a good call, whose unit the test
    then finds, then a bad one."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DATABASE_NAME": connection.settings_dict["NAME"],
           "DJANGO_SETTINGS_MODULE": "config.settings.test"}

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "manage.py", "create_unit", *args],
                              cwd=root, env=env, capture_output=True, text=True, timeout=60, check=False)

    good = command(world.a.code, "from-shell", "Unit from a shell")
    assert (good.returncode, good.stderr) == (0, ""), good.stderr
    assert Unit.objects.filter(agency=world.a, code="from-shell").exists()

    result = command("NO-SUCH-AGENCY", "u1", "Unit")
    assert result.returncode != 0
    assert "NO-SUCH-AGENCY" in result.stderr
    assert result.stdout == ""


def test_sign_in_is_throttled_with_429(db, monkeypatch):
    from django.core.cache import cache
    from rest_framework.test import APIClient
    from rest_framework.throttling import AnonRateThrottle

    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "3/minute"})
    client = APIClient(REMOTE_ADDR="192.0.2.77")
    cache.delete("throttle_anon_192.0.2.77")
    codes = [client.post("/api/v1/auth/tokens/", {"username": "nobody", "password": "x"}, format="json").status_code
             for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert "detail" in client.post("/api/v1/auth/tokens/", {}, format="json").json()
    cache.delete("throttle_anon_192.0.2.77")
