"""The Jobs page, in-process: managers see every job and others their own, filters by kind and status
(a wrong one named), Cancel for a waiting job (the form's token checked), a finished job or another
organization's refused."""

from __future__ import annotations

import re
from collections.abc import Callable

from truthset.config import Settings
from truthset.domain import Role
from truthset.services import jobs

from .helpers import Actor, Api, Org
from .test_account_pages import _browser, _csrf

ROW = re.compile(r'<tr data-job="([0-9a-f]{24})" data-status="(\w+)">')


def _job(org: Org, actor: Actor | None, kind: str = "export", project_id: str = "p") -> str:
    """A job waiting for a runner, started by ``actor`` (None: the system)."""
    with org.db.write() as conn:
        job = jobs.enqueue(conn, org.id, kind, {"project_id": project_id}, created_by=actor.id if actor else None)
    return str(job["id"])


def test_managers_see_every_job_and_others_their_own(
    make_api: Callable[..., Api], settings: Settings, org: Org
) -> None:
    annotator = org.actor(Role.ANNOTATOR)
    project = org.make_project(name="reviews of soup")
    theirs, system = _job(org, annotator), _job(org, None, kind="quality.refit", project_id=project["id"])
    owner = _browser(make_api, settings, org.owner)
    page = owner.get("/jobs").text
    assert dict(ROW.findall(page)) == {theirs: "queued", system: "queued"}
    assert f'<a href="/projects/{project["id"]}">reviews of soup</a>' in page  # named, linked
    assert dict(ROW.findall(owner.get("/jobs?kind=quality.refit").text)) == {system: "queued"}
    assert ROW.findall(owner.get("/jobs?status=succeeded").text) == []
    bad = owner.get("/jobs?status=lost&kind=nope")
    assert bad.status_code == 422 and 'id="err-status"' in bad.text and 'id="err-kind"' in bad.text
    browser = _browser(make_api, settings, annotator)
    page = browser.get("/jobs").text
    assert dict(ROW.findall(page)) == {theirs: "queued"} and "The background jobs you started" in page


def test_cancel_from_the_page(make_api: Callable[..., Api], settings: Settings, org: Org, other_org: Org) -> None:
    waiting, elsewhere = _job(org, org.owner), _job(other_org, other_org.owner)
    owner = _browser(make_api, settings, org.owner)
    csrf = _csrf(owner, "/jobs")
    assert f'action="/jobs/{waiting}/cancel"' in owner.get("/jobs").text
    forged = owner.post(f"/jobs/{waiting}/cancel", data={"csrf_token": "forged"})
    assert forged.status_code == 403 and jobs.get_job(org.db, org.owner.principal, waiting)["status"] == "queued"
    done = owner.post(f"/jobs/{waiting}/cancel", data={"csrf_token": csrf, "back": "/jobs?kind=export"})
    assert done.status_code == 303 and done.headers["location"] == "/jobs?kind=export"
    assert jobs.get_job(org.db, org.owner.principal, waiting)["status"] == "canceled"
    page = owner.get(done.headers["location"]).text
    assert "is canceled" in page and f'action="/jobs/{waiting}/cancel"' not in page  # finished: no button
    assert owner.post(f"/jobs/{elsewhere}/cancel", data={"csrf_token": csrf}).status_code == 404
    assert jobs.get_job(other_org.db, other_org.owner.principal, elsewhere)["status"] == "queued"
    # canceling a canceled job changes nothing; a "back" outside the jobs page is not followed
    again = owner.post(f"/jobs/{waiting}/cancel", data={"csrf_token": csrf, "back": "https://evil.example/jobs"})
    assert again.status_code == 303 and again.headers["location"] == "/jobs"


def test_a_member_below_manager_may_not_cancel_anothers_job(
    make_api: Callable[..., Api], settings: Settings, org: Org
) -> None:
    owners = _job(org, org.owner)
    annotator = org.actor(Role.ANNOTATOR)
    browser = _browser(make_api, settings, annotator)
    csrf = _csrf(browser, "/jobs")
    refused = browser.post(f"/jobs/{owners}/cancel", data={"csrf_token": csrf})
    assert refused.status_code in (403, 404)
    assert jobs.get_job(org.db, org.owner.principal, owners)["status"] == "queued"


def test_a_job_queued_for_later_says_when_it_runs(make_api: Callable[..., Api], settings: Settings, org: Org) -> None:
    """The prune a project's deletion queues a day later (or a retry waiting out its backoff) is
    "queued" with the time it runs after; one that may run now says nothing more."""
    from datetime import timedelta

    from truthset.storage.ids import utcnow

    later = utcnow() + timedelta(hours=24)
    with org.db.write() as conn:
        waiting = jobs.enqueue(conn, org.id, "media.prune", {"uploaded_before": utcnow().isoformat()}, run_after=later)
    now = _job(org, org.owner)
    page = _browser(make_api, settings, org.owner).get("/jobs").text
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr data-job="([0-9a-f]{24})".*?</tr>', page, flags=re.S)}
    assert f"runs after {later.strftime('%Y-%m-%d %H:%M')} UTC" in rows[waiting["id"]]
    assert "runs after" not in rows[now]
