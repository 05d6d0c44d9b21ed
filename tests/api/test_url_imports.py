"""URL-list imports: each image fetched through the network guard (a real HTTP server on
127.0.0.1, allowed by the settings as tests of outbound calls do), stored as media, one task per
URL with its size; per-URL errors in the report; a private address refused; re-import adds nothing."""

from __future__ import annotations

import io
from typing import Any

import orjson
from PIL import Image

from receiver import Reply, Request, running
from truthset.jobs import Runner

from .helpers import API, Api, Org
from .test_imports import IMAGE_SPEC, settings_of, tasks_of, upload


def _png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "green").save(out, format="PNG")
    return out.getvalue()


IMAGES = {"/a.png": _png((4, 3)), "/b.png": _png((8, 6))}


def _answer(request: Request, n: int) -> Reply:
    path = request.path.split("?")[0]
    if path in IMAGES:
        return Reply(200, IMAGES[path], {"Content-Type": "image/png"})
    if path == "/page":
        return Reply(200, b"<html>not an image</html>", {"Content-Type": "image/png"})
    return Reply(404, b"gone")


def _imported(api: Api, org: Org, project_id: str, body: bytes, *, allow: bool = True, **params: Any) -> dict:
    response = upload(api, org, project_id, body, "photos.txt", **params)
    assert response.status_code == 202, response.text
    settings = settings_of(api)
    if allow:
        settings = settings.model_copy(update={"outbound_allow": "127.0.0.1"})
    Runner(api.app.state.db, kinds=["import"], settings=settings).run_until_idle()
    return api.get(f"{API}/jobs/{response.json()['id']}", auth=org.owner).json()


def test_a_url_list_fetches_each_image_once_and_a_second_run_adds_nothing(api: Api, org: Org) -> None:
    project = org.make_project(spec=IMAGE_SPEC)
    with running(_answer) as server:
        line = orjson.dumps({"url": f"{server.url}/b.png", "unique_id": "b", "metadata": {"shot": 2}}).decode()
        body = f"# photos\n{server.url}/a.png\n\n{line}\n".encode()
        job = _imported(api, org, project["id"], body)
        assert job["status"] == "succeeded" and job["result"]["created"] == 2, job
        assert len(server.requests) == 2  # reject mode fetches each URL once, spooled before storing
        stored = sorted(tasks_of(api, org, project["id"]), key=lambda t: t["metadata"]["url"])
        assert [(t["metadata"]["width"], t["metadata"]["height"], t.get("unique_id")) for t in stored] == [
            (4, 3, None),
            (8, 6, "b"),
        ]
        assert stored[1]["metadata"]["shot"] == 2
        media_id = stored[0]["data"]["photo"].removeprefix("media:")
        blob = api.get(f"{API}/media/{media_id}", auth=org.owner)
        assert blob.status_code == 200 and blob.content == IMAGES["/a.png"]
        again = _imported(api, org, project["id"], body)
        assert again["result"]["existing"] == 2 and again["result"]["created"] == 0


def test_bad_urls_are_named_by_line_reject_stores_nothing_and_skip_the_rest(api: Api, org: Org) -> None:
    project = org.make_project(spec=IMAGE_SPEC)
    with running(_answer) as server:
        body = "\n".join(
            [f"{server.url}/a.png", f"{server.url}/missing.png", f"{server.url}/page", "ftp://example.com/x.png"]
        ).encode()
        rejected = _imported(api, org, project["id"], body)
        assert rejected["status"] == "failed"
        errors = {e["line"]: e["message"] for e in rejected["result"]["errors"]}
        assert set(errors) == {2, 3, 4}, errors
        assert "answered 404" in errors[2] and "not an image" in errors[3] and "not an http(s) URL" in errors[4]
        assert tasks_of(api, org, project["id"]) == []
        skipped = _imported(api, org, project["id"], body, on_error="skip")
        assert skipped["result"]["created"] == 1 and skipped["result"]["invalid"] == 3


def test_private_and_loopback_addresses_are_refused_unless_allowed(api: Api, org: Org) -> None:
    project = org.make_project(spec=IMAGE_SPEC)
    with running(_answer) as server:
        body = f"{server.url}/a.png\nhttp://169.254.169.254/latest/meta-data\nhttp://10.1.2.3/x.png\n".encode()
        job = _imported(api, org, project["id"], body, allow=False, on_error="skip")
        assert job["status"] == "failed"  # nothing stored: every line refused
        messages = [e["message"] for e in job["result"]["errors"]]
        assert len(messages) == 3 and all("refused" in m or "not allowed" in m for m in messages), messages
        assert server.requests == []  # refused before connecting


def test_a_url_list_needs_an_image_field(api: Api, org: Org) -> None:
    project = org.make_project()
    response = upload(api, org, project["id"], b"http://example.com/a.png\n", "photos.txt")
    assert response.status_code == 422 and "image field" in response.json()["error"]["message"]
