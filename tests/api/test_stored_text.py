"""Strings from a request that reach a text column, and rows an earlier version stored, never make a 500.

PostgreSQL's text cannot hold NUL (U+0000): a NUL in an upload's file name or an Idempotency-Key
failed in the database; and task metadata stored with a NUL (before schemas.check_json refused
it) made every ``metadata.*`` filter of that organization fail, since PostgreSQL cannot turn
such a JSON document into text. Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from truthset.config import Settings

from .helpers import ANSWER, API, PNG, Api, Org, World, assert_error, build_world


@pytest.fixture
def world(org: Org, settings: Settings) -> World:
    return build_world(org, settings)


def _store_metadata_as_an_earlier_version_did(org: Org, task_id: str, metadata: dict[str, Any]) -> None:
    """Write the metadata column directly with SQL, past today's checks (``\\u0000`` in the JSON text)."""
    with org.db.engine.begin() as conn:
        conn.execute(
            text("UPDATE tasks SET metadata = :m WHERE id = :id"), {"m": orjson.dumps(metadata).decode(), "id": task_id}
        )


def _ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {task["id"] for task in response.json()["items"]}


def test_metadata_filters_work_beside_rows_stored_with_nul(api: Api, org: Org) -> None:
    project = org.make_project()
    english = org.make_task(project["id"], "en", metadata={"lang": "en"})
    french = org.make_task(project["id"], "fr", metadata={"lang": "fr"})
    nul_value, nul_key, lookalike = (org.make_task(project["id"], str(n)) for n in range(3))
    _store_metadata_as_an_earlier_version_did(org, nul_value["id"], {"lang": "en", "note": "a\x00b"})
    _store_metadata_as_an_earlier_version_did(org, nul_key["id"], {"k\x00": 1, "lang": "fr"})
    # a backslash and "u0000" (six characters, no NUL): escaped as \\u0000 in the JSON text
    _store_metadata_as_an_earlier_version_did(org, lookalike["id"], {"lang": "en", "path": "C:\\u0000"})

    def listed(**filters: str) -> set[str]:
        params = {"project_id": project["id"], **{f"metadata.{k}": v for k, v in filters.items()}}
        return _ids(api.get(f"{API}/tasks", auth=org.owner, params=params))

    assert listed(lang="en") == {english["id"], nul_value["id"], lookalike["id"]}
    assert listed(lang="fr") == {french["id"], nul_key["id"]}
    assert listed(path="C:\\u0000") == {lookalike["id"]}
    assert listed(note="ab") <= {nul_value["id"]}  # the spoilt value itself: no error (a match is not promised)
    assert listed(lang="de") == set()
    # the rows themselves still read back (the NUL is valid JSON, as stored)
    got = api.get(f"{API}/tasks/{nul_value['id']}", auth=org.owner)
    assert got.status_code == 200 and got.json()["metadata"] == {"lang": "en", "note": "a\x00b"}


def _multipart(filename: bytes) -> dict[str, Any]:
    """A form with one file part, built by hand: clients percent-encode a NUL in a file name."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"Content-Type: image/png\r\n\r\n" + PNG + b"\r\n--b--\r\n"
    )
    return {"content": body, "headers": {"Content-Type": "multipart/form-data; boundary=b"}}


def test_a_nul_in_an_upload_file_name_is_refused_naming_it(api: Api, org: Org) -> None:
    error = assert_error(api.post(f"{API}/media", auth=org.owner, **_multipart(b"a\x00.png")), 422, "invalid_input")
    assert error["details"]["field"] == "filename", error
    ok = api.post(f"{API}/media", auth=org.owner, **_multipart("ça va.png".encode()))
    assert ok.status_code == 201, ok.text


def test_an_idempotency_key_with_control_characters_is_refused_naming_it(api: Api, world: World) -> None:
    url = f"{API}/tasks/{world.answer_task['id']}/responses"
    for key in ("a\x00b", "a\x01b", ""):
        response = api.post(url, auth=world.org.owner, json={"answer": ANSWER}, headers={"Idempotency-Key": key})
        error = assert_error(response, 422, "invalid_input")
        assert error["details"]["field"] == "header.idempotency-key", error
    ok = api.post(url, auth=world.org.owner, json={"answer": ANSWER}, headers={"Idempotency-Key": "k 1/x"})
    assert ok.status_code == 201, ok.text


def test_a_nul_in_the_sign_in_form_is_a_wrong_password_not_a_500(api: Api, org: Org) -> None:
    """The web UI's sign-in form looks members up by email (and organization): text columns."""
    email, password = org.owner.member["email"], org.owner.password
    for fields in ({"email": email + "\x00"}, {"email": email, "organization_id": org.id + "\x00"}):
        form = api.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        response = api.post("/login", data={"password": password, "csrf_token": token.group(1), **fields})
        assert response.status_code == 401, response.text
        assert "Wrong email or password." in response.text
