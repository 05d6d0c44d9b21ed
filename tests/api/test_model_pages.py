"""The Models page in-process (tests/e2e/test_models_page.py drives it in a browser): who may open
it, tenant isolation, its tables (versions with metrics, model workers with figures, model runs
with tokens), keyset pages, escaping, and the link from the project page and the dashboard."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from truthset.domain import Role
from truthset.schemas import PredictionUpload
from truthset.services import jobs, predictions
from truthset.storage import tables as t
from truthset.storage.ids import new_id

from .helpers import Api, Org
from .test_session import sign_in

CONFIG = re.compile(r'<script type="application/json" id="models-config">(.*?)</script>', re.S)


def _version(org: Org, project_id: str, n: int, accuracy: float) -> None:
    metrics = {
        "accuracy": accuracy,
        "baseline_accuracy": 0.4,
        "ece": 0.05,
        "brier": 0.2,
        "n_examples": n,
        "labels": {"gold": 1, "reviewed": 2, "confident": n - 3, "below_target": 4},
    }
    if n >= 80:  # a version trained before the verified figures existed has none (the first one here)
        metrics.update(verified_examples=3, verified_accuracy=2 / 3, verified_ece=0.1)
    row = {
        "id": new_id(),
        "organization_id": org.id,
        "project_id": project_id,
        "question": "sentiment",
        "version": f"truthset-text-{n:016x}",
        "path": f"models/{project_id}/v{n}.skops",
        "sha256": "0" * 64,
        "metrics": metrics,
        "created_at": datetime.now(UTC).replace(tzinfo=None),
        "status": "ready",
    }
    with org.db.write() as conn:
        conn.execute(t.project_models.insert().values(row))


def _llm_run(org: Org, project_id: str) -> None:
    payload = {"project_id": project_id, "question": "sentiment", "worker": "llm:tiny@1"}
    with org.db.write() as conn:
        job = jobs.enqueue(conn, org.id, "model.llm_label", payload, created_by=org.owner.member["id"])
        usage = {"prompt_tokens": 400, "completion_tokens": 20, "total_tokens": 420}
        result = {"model": "llm:tiny@1", "stored": 5, "invalid": 1, "failed": 0, "usage": usage}
        conn.execute(t.jobs.update().where(t.jobs.c.id == job["id"]).values(status="succeeded", result=result))


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.REVIEWER])
def test_roles_below_manager_get_403_and_no_link(api: Api, org: Org, role: Role) -> None:
    project = org.make_project()
    member = org.actor(role)
    sign_in(api, member.member["email"], member.password)
    response = api.get(f"/projects/{project['id']}/models")
    assert response.status_code == 403 and "Not allowed" in response.text
    assert f"/projects/{project['id']}/models" not in api.get(f"/projects/{project['id']}").text


def test_another_organization_gets_404_and_signed_out_visitors_sign_in(api: Api, org: Org, other_org: Org) -> None:
    project = org.make_project()
    response = api.get(f"/projects/{project['id']}/models")
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    sign_in(api, other_org.owner.member["email"], other_org.owner.password)
    assert api.get(f"/projects/{project['id']}/models").status_code == 404


def test_a_manager_sees_versions_model_workers_and_runs(api: Api, org: Org) -> None:
    project = org.make_project(name="<script>x</script>")
    tasks = org.make_tasks(project["id"], 3)
    _version(org, project["id"], 40, 0.71)
    _version(org, project["id"], 80, 0.83)
    _llm_run(org, project["id"])
    items = [{"task_id": task["id"], "question": "sentiment", "answer": "positive", "score": 0.9} for task in tasks]
    predictions.upload_predictions(
        org.db, org.owner.principal, project["id"], PredictionUpload(model="clf", version="2", predictions=items)
    )
    manager = org.actor(Role.MANAGER)
    sign_in(api, manager.member["email"], manager.password)
    assert f"/projects/{project['id']}/models" in api.get(f"/projects/{project['id']}").text
    assert f"/projects/{project['id']}/models" in api.get(f"/projects/{project['id']}/dashboard").text

    page = api.get(f"/projects/{project['id']}/models")
    assert page.status_code == 200
    text = page.text
    assert "<script>x</script>" not in text  # the project's name is escaped
    assert 'id="train-now"' in text and '<option value="sentiment">' in text
    rows = re.findall(r'<tr data-version="([^"]+)">', text)
    assert rows == [f"truthset-text-{80:016x}", f"truthset-text-{40:016x}"]  # newest first
    assert "83.0%" in text and "40.0%" in text and "0.050" in text and "0.200" in text
    assert "gold 1, reviewed 2, confident 77; below target 4" in text
    assert '<tr data-worker="clf@2">' in text and 'data-cell="answers">3<' in text
    assert "llm:tiny@1" in text and "420" in text and "(400 + 20)" in text
    config = json.loads(CONFIG.search(text).group(1))  # type: ignore[union-attr]
    assert [p["n"] for p in config["curve"]["sentiment"]] == [40, 80]  # oldest first: the learning curve
    assert config["curve"]["sentiment"][1]["accuracy"] == 0.83
    # the held-out accuracy on gold and reviewed labels alone, where the version measured it
    verified = re.findall(r'<td data-cell="verified">(.*?)</td>', text)
    assert verified == ['66.7% <span class="muted">on 3</span>', "\u2013"]  # an en dash: none measured
    assert [p["verified_accuracy"] for p in config["curve"]["sentiment"]] == [None, 2 / 3]


def test_pages_follow_cursors_and_a_bad_cursor_is_named(api: Api, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    from truthset.ui import _model_pages

    monkeypatch.setattr(_model_pages, "PAGE_SIZE", 1)
    project = org.make_project()
    for n in (30, 60, 90):
        _version(org, project["id"], n, 0.8)
    sign_in(api, org.owner.member["email"], org.owner.password)
    first = api.get(f"/projects/{project['id']}/models").text
    cursor = re.search(r"\?versions=([0-9a-f]{24})", first).group(1)  # type: ignore[union-attr]
    second = api.get(f"/projects/{project['id']}/models", params={"versions": cursor}).text
    assert re.findall(r'<tr data-version="([^"]+)">', second) == [f"truthset-text-{60:016x}"]
    bad = api.get(f"/projects/{project['id']}/models", params={"versions": "nope"})
    assert bad.status_code == 400 and "versions: not a page cursor" in bad.text
