"""The rate of sign-in attempts per client address (AUTH_RATE), from the client's side: the API's token door and the
admin's login form share one count; past it, 429 and no password is checked, so a spray locks nobody out.

Each test signs in from addresses of its own (random, in documentation ranges): the counts live in the shared
Redis cache and outlast a run, and other tests sign in from 127.0.0.1."""

from __future__ import annotations

import ipaddress
import math
import random
import time

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from accounts.throttles import check_auth_rate

from . import factories

TOKENS = "/api/v1/auth/tokens/"
ADMIN_LOGIN = "/admin/login/"
BROWSABLE_LOGIN = "/api-auth/login/"
PASSWORD = "correct horse battery"  # what tests.factories.user sets


@pytest.fixture(autouse=True)
def _rate(settings):
    settings.AUTH_RATE = "10/minute"


def address() -> str:
    """An IPv6 address no other test (or earlier run) signs in from."""
    return str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("2001:db8::")) + random.getrandbits(80)))


def api_sign_in(addr: str, username: str, password: str, **extra):
    return APIClient(REMOTE_ADDR=addr).post(TOKENS, {"username": username, "password": password}, format="json",
                                            **extra)


def admin_sign_in(addr: str, username: str, password: str):
    return Client(REMOTE_ADDR=addr).post(ADMIN_LOGIN, {"username": username, "password": password})


def browsable_sign_in(addr: str, username: str, password: str):
    return Client(REMOTE_ADDR=addr).post(BROWSABLE_LOGIN, {"username": username, "password": password})


def accounts(world, n: int = 3) -> list[User]:
    return [factories.user(world.a, "investigator", is_staff=True, username=f"spray-{i}") for i in range(n)]


def lock_state(users: list[User]) -> list[tuple[int, bool]]:
    return [(user.failed_logins, user.locked_until is not None)
            for user in User.objects.filter(pk__in=[u.pk for u in users]).order_by("username")]


@pytest.mark.parametrize("sign_in", [api_sign_in, admin_sign_in, browsable_sign_in], ids=["api", "admin", "browsable"])
def test_a_password_spray_meets_429_before_it_can_lock_an_account(world, sign_in):
    users = accounts(world)
    spray = address()
    codes = [sign_in(spray, users[i % 3].username, "wrong password").status_code for i in range(30)]

    wrong = 401 if sign_in is api_sign_in else 200  # a login form is shown again, with the error
    assert codes == [wrong] * 10 + [429] * 20
    # The first 10 were checked (4, 3 and 3 failures: under AUTH_LOCKOUT_THRESHOLD, 5); the 20 refused were not.
    assert lock_state(users) == [(4, False), (3, False), (3, False)]

    # Another address signs in, whatever the spray's.
    assert api_sign_in(address(), users[0].username, PASSWORD).status_code == 201
    assert admin_sign_in(address(), users[1].username, PASSWORD).status_code == 302
    assert browsable_sign_in(address(), users[2].username, PASSWORD).status_code == 302


def test_without_the_limit_the_same_spray_locks_every_account(world, settings):
    """The test above can fail: with a rate out of reach, 30 attempts lock all three accounts."""
    settings.AUTH_RATE = "1000/minute"
    users = accounts(world)
    spray = address()
    codes = [api_sign_in(spray, users[i % 3].username, "wrong password").status_code for i in range(30)]
    assert 429 not in codes
    assert [locked for _, locked in lock_state(users)] == [True, True, True]


def test_the_api_answers_429_json_with_retry_after(world):
    user = accounts(world, 1)[0]
    spray = address()
    opened = time.monotonic()  # the address's window opens at its first attempt and lasts the rate's minute
    for _ in range(10):
        api_sign_in(spray, user.username, "wrong password")
    response = api_sign_in(spray, user.username, PASSWORD)  # the right password is not checked either
    assert response.status_code == 429
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()
    assert 60 - math.ceil(time.monotonic() - opened) <= int(response["Retry-After"]) <= 60


def test_the_admin_login_answers_429_with_retry_after(world):
    user = accounts(world, 1)[0]
    spray = address()
    opened = time.monotonic()  # the address's window opens at its first attempt and lasts the rate's minute
    for _ in range(10):
        admin_sign_in(spray, user.username, "wrong password")
    response = admin_sign_in(spray, user.username, PASSWORD)
    assert response.status_code == 429
    assert "detail" in response.json()
    assert 60 - math.ceil(time.monotonic() - opened) <= int(response["Retry-After"]) <= 60
    # Showing the form is no attempt.
    assert Client(REMOTE_ADDR=spray).get(ADMIN_LOGIN).status_code == 200


def test_the_api_and_the_admin_share_one_count_per_address(world):
    user = accounts(world, 1)[0]
    spray = address()
    for _ in range(5):
        assert api_sign_in(spray, user.username, "wrong password").status_code == 401
        assert admin_sign_in(spray, user.username, "wrong password").status_code == 200
    assert api_sign_in(spray, user.username, PASSWORD).status_code == 429
    assert admin_sign_in(spray, user.username, PASSWORD).status_code == 429


def test_a_forged_forwarded_for_header_does_not_change_the_address(world):
    """With no proxy of ours in front (TRUSTED_PROXY_COUNT 0), X-Forwarded-For is the client's own words."""
    user = accounts(world, 1)[0]
    spray = address()
    codes = [api_sign_in(spray, user.username, "wrong password", HTTP_X_FORWARDED_FOR=address()).status_code
             for _ in range(11)]
    assert codes == [401] * 10 + [429]


def test_behind_a_trusted_proxy_the_address_is_the_one_it_forwards(world, settings):
    """With one proxy of ours, the address it appends is the client: two clients behind it count apart."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    user = accounts(world, 1)[0]
    proxy, first, second = address(), address(), address()
    codes = [api_sign_in(proxy, "nobody", "wrong password", HTTP_X_FORWARDED_FOR=f"{address()}, {first}")
             .status_code for _ in range(11)]
    assert codes == [401] * 10 + [429]
    assert api_sign_in(proxy, user.username, PASSWORD, HTTP_X_FORWARDED_FOR=second).status_code == 201


@pytest.mark.parametrize("rate", ["ten/minute", "10/fortnight", "10", "0/minute"])
def test_a_rate_that_does_not_parse_stops_the_start(settings, rate):
    settings.AUTH_RATE = rate
    assert [error.id for error in check_auth_rate()] == ["accounts.E001"]
    settings.AUTH_RATE = "100/hour"
    assert check_auth_rate() == []
