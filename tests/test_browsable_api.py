"""The browsable API with a session (API.md § Authentication): its forms send what each operation takes, JSON
everywhere and multipart where a file is uploaded, and its writes check the CSRF token as the session requires."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from cases.models import Case
from imports.models import ImportJob

from . import factories

LOGIN = "/api-auth/login/"
CASES = "/api/v1/cases/"
IMPORTS = "/api/v1/imports/"
MEDIA_TYPES = re.compile(r'<select name="_content_type"[^>]*>(.*?)</select>', re.S)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    """Uploads and evidence files go to a temporary MEDIA_ROOT."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def browser(world, investigator) -> Client:
    """A browser signed in through the browsable API's login page, CSRF checks on (as for a real browser)."""
    client = Client(enforce_csrf_checks=True)
    client.get(LOGIN)
    response = client.post(LOGIN, {"username": investigator.username, "password": factories.PASSWORD,
                                   "csrfmiddlewaretoken": client.cookies["csrftoken"].value, "next": CASES})
    assert (response.status_code, response["Location"]) == (302, CASES)
    return client


def csrf(client: Client) -> str:
    return client.cookies["csrftoken"].value


def media_types(page: str) -> list[str]:
    """The media types the raw-data form offers."""
    found = MEDIA_TYPES.search(page)
    assert found, "no raw-data form on the page"
    return re.findall(r'<option value="([^"]+)"', found.group(1))


def test_a_json_resource_offers_the_json_form_only_and_takes_json_with_the_csrf_token(browser):
    page = browser.get(CASES, HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    text = page.content.decode()
    assert media_types(text) == ["application/json"]
    assert 'enctype="multipart/form-data"' not in text
    created = browser.post(CASES, {"title": "Typed in the browser"}, content_type="application/json",
                           HTTP_X_CSRFTOKEN=csrf(browser))
    assert created.status_code == 201, created.content
    assert Case.objects.get().title == "Typed in the browser"
    without_token = browser.post(CASES, {"title": "No token"}, content_type="application/json")
    assert without_token.status_code == 403 and "CSRF" in without_token.json()["detail"]
    as_form = browser.post(CASES, {"title": "As a form", "csrfmiddlewaretoken": csrf(browser)})
    assert as_form.status_code == 415 and as_form.json()["detail"].startswith('Unsupported media type "multipart')
    assert Case.objects.count() == 1


def test_an_upload_offers_the_file_form_and_takes_multipart(browser):
    text = browser.get(IMPORTS, HTTP_ACCEPT="text/html").content.decode()
    assert 'enctype="multipart/form-data"' in text and '<input name="file"  type="file"' in text
    assert media_types(text) == ["multipart/form-data"]
    upload = SimpleUploadedFile("people.csv", b"name,nationalities\nLi Na,CN\n", content_type="text/csv")
    response = browser.post(IMPORTS, {"kind": "persons", "mode": "dry_run", "file": upload},
                            HTTP_X_CSRFTOKEN=csrf(browser))
    assert response.status_code == 202, response.content
    assert ImportJob.objects.get().kind == "persons"


def test_an_edit_of_evidence_offers_the_json_form(browser, world, investigator):
    case = factories.case(world.a, world.a1, lead=investigator)
    evidence = factories.evidence(case, investigator)
    page = browser.get(f"{CASES}{case.pk}/evidence/{evidence.pk}/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert media_types(page.content.decode()) == ["application/json"]
    listing = browser.get(f"{CASES}{case.pk}/evidence/", HTTP_ACCEPT="text/html").content.decode()
    assert '<input name="file"  type="file"' in listing
