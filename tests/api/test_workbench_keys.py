"""Spec hotkeys and the workbench's own keys: a new spec is refused, a stored one still opens."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from sqlalchemy import update

from truthset.services import accounts
from truthset.storage import tables as t

from .helpers import API, Api, Org, assert_error
from .test_session import sign_in

SPEC: dict[str, Any] = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [
        {"name": "safe", "type": "label", "options": [{"value": "yes", "hotkey": "y"}, {"value": "no", "hotkey": "x"}]},
        {"name": "notes", "type": "text", "required": False},
    ],
}
CONFIG = re.compile(r'<script type="application/json" id="workbench-config">(.*?)</script>', re.S)


def test_a_new_spec_giving_a_workbench_key_to_an_option_is_refused(api: Api, org: Org) -> None:
    spec = json.loads(json.dumps(SPEC))
    spec["questions"][0]["options"][1]["hotkey"] = "n"
    error = assert_error(api.post(f"{API}/projects", auth=org.owner, json={"name": "p", "spec": spec}), 422)
    assert error["details"]["field"] == "spec.questions[0].options[1].hotkey"
    assert error["message"] == (
        "spec.questions[0].options[1].hotkey: 'n' is the workbench's key for next question; "
        "a hotkey may not be one of the workbench keys s, r, n, p"
    )


def test_a_stored_spec_with_a_workbench_hotkey_opens_and_the_workbench_keeps_its_key(api: Api, org: Org) -> None:
    project = org.make_project(spec=SPEC)
    stored = json.loads(json.dumps(project["spec"]))
    stored["questions"][0]["options"][1]["hotkey"] = "n"  # as saved before the rule
    with org.db.write() as conn:
        conn.execute(update(t.projects).where(t.projects.c.id == project["id"]).values(spec=stored))
    assert api.get(f"{API}/projects/{project['id']}", auth=org.owner).json()["spec"] == stored
    (task,) = org.make_tasks(project["id"], 1)
    answer = {"answer": {"safe": "no"}}
    assert api.post(f"{API}/tasks/{task['id']}/responses", auth=org.owner, json=answer).status_code == 201

    member = org.add_member("annotator")
    with org.db.write() as conn:
        password_hash = accounts._hasher.hash("annotator-password-1")
        conn.execute(update(t.members).where(t.members.c.id == member.id).values(password_hash=password_hash))
    sign_in(api, member.member["email"], "annotator-password-1")
    page = api.get(f"/projects/{project['id']}/label")
    assert page.status_code == 200
    match = CONFIG.search(page.text)
    assert match is not None
    config = json.loads(html.unescape(match.group(1)))
    assert config["keys"] == {"skip": "s", "release": "r", "next": "n", "previous": "p"}
    # the page's copy of the spec drops the clashing hotkey ("no" takes its number key, 2)
    assert config["questions"][0]["options"] == [
        {"value": "yes", "label": "", "hotkey": "y"},
        {"value": "no", "label": "", "hotkey": None},
    ]
    note = re.search(r'<p class="muted small key-conflict">(.*?)</p>', page.text, re.S)
    assert note is not None
    assert re.sub(r"<[^>]+>", "", note.group(1)) == (
        "n stays “next question”: the spec also gives it to “no” of safe, "
        "which takes its number key (or the mouse) instead."
    )
