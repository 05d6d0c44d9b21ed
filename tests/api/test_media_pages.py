"""The Images page, in-process: managers see the organization's images (never another's), newest
first, by file name; upload from the page (the form's token checked; a file that is no image named
and nothing stored); roles below manager get no page and no link; the prune is offered to owners and
admins only."""

from __future__ import annotations

import re
from collections.abc import Callable

from truthset.config import Settings
from truthset.domain import Role

from .helpers import API, PNG, Api, Org, png_bytes
from .test_account_pages import _browser, _csrf

ROW = re.compile(r'<tr data-media="([0-9a-f]{24})">')


def _upload(api: Api, org: Org, name: str, size: int, auth: object = None) -> dict:
    files = {"file": (name, png_bytes(size, size + 1), "image/png")}
    r = api.post(f"{API}/media", auth=auth or org.owner, files=files)
    assert r.status_code == 201, r.text
    return r.json()


def test_managers_see_the_organizations_images_newest_first_by_name(
    api: Api, make_api: Callable[..., Api], settings: Settings, org: Org, other_org: Org
) -> None:
    cat, dog = _upload(api, org, "cat<b>.png", 3), _upload(api, org, "dog.png", 4)
    _upload(api, other_org, "cat-elsewhere.png", 5)
    manager = _browser(make_api, settings, org.actor(Role.MANAGER))
    page = manager.get("/media")
    assert page.status_code == 200, page.text
    assert ROW.findall(page.text) == [dog["id"], cat["id"]]
    assert f'<img class="thumb" src="/api/v1/media/{cat["id"]}/thumbnail"' in page.text and "3x4" in page.text
    assert f"<code>media:{cat['id']}</code>" in page.text
    assert "cat&lt;b&gt;.png" in page.text and "cat<b>" not in page.text  # a file name is text, never markup
    assert '<a href="/media" data-nav="media">Images</a>' in page.text
    assert 'id="prune-media"' not in page.text  # owners and admins only
    assert ROW.findall(manager.get("/media?filename=CAT").text) == [cat["id"]]
    assert "No image&#39;s file name contains this." in manager.get("/media?filename=zebra").text
    assert manager.get(f"/api/v1/media/{cat['id']}/thumbnail").status_code == 200  # opened with the cookie
    too_long = manager.get("/media?filename=" + "x" * 301)
    assert too_long.status_code == 422 and 'id="err-filename"' in too_long.text
    owner = _browser(make_api, settings, org.owner)
    assert 'id="prune-media"' in owner.get("/media").text
    assert 'href="/media"' in owner.get("/projects/archived").text  # the prune's old place points here


def test_pages_of_images(make_api: Callable[..., Api], settings: Settings, api: Api, org: Org) -> None:
    from truthset.ui import _media_pages

    ids = [_upload(api, org, f"p{i}.png", i + 1)["id"] for i in range(3)]
    owner = _browser(make_api, settings, org.owner)
    original = _media_pages.PAGE_SIZE
    _media_pages.PAGE_SIZE = 2
    try:
        first = owner.get("/media").text
        assert ROW.findall(first) == ids[:0:-1]
        older = re.search(r'href="(/media\?cursor=[0-9a-f]{24})" rel="next"', first)
        assert older is not None
        second = owner.get(older.group(1)).text
        assert ROW.findall(second) == [ids[0]] and 'href="/media">Newest images</a>' in second
    finally:
        _media_pages.PAGE_SIZE = original


def test_roles_below_manager_get_no_images_page(make_api: Callable[..., Api], settings: Settings, org: Org) -> None:
    for role in (Role.ANNOTATOR, Role.REVIEWER):
        browser = _browser(make_api, settings, org.actor(role))
        assert browser.get("/media").status_code == 403
        assert 'data-nav="media"' not in browser.get("/jobs").text
        csrf = _csrf(browser, "/jobs")
        refused = browser.post("/media", data={"csrf_token": csrf}, files={"file": ("x.png", PNG, "image/png")})
        assert refused.status_code == 403


def test_upload_from_the_page(make_api: Callable[..., Api], settings: Settings, api: Api, org: Org) -> None:
    manager = _browser(make_api, settings, org.actor(Role.MANAGER))
    csrf = _csrf(manager, "/media")
    image = png_bytes(6, 5)
    forged = manager.post("/media", data={"csrf_token": "forged"}, files={"file": ("a.png", image, "image/png")})
    assert forged.status_code == 403 and ROW.findall(manager.get("/media").text) == []
    done = manager.post("/media", data={"csrf_token": csrf}, files={"file": ("sunset.png", image, "image/png")})
    assert done.status_code == 303 and done.headers["location"] == "/media?filename=sunset.png"
    page = manager.get(done.headers["location"]).text
    (stored,) = ROW.findall(page)
    assert f"Uploaded sunset.png: use media:{stored} as an image field&#39;s value" in page and "6x5" in page
    assert api.get(f"{API}/media/{stored}", auth=org.owner).content == image

    refused = manager.post(
        "/media", data={"csrf_token": csrf}, files={"file": ("notes.png", b"plain text", "image/png")}
    )
    assert refused.status_code == 422 and 'id="media-file-error"' in refused.text
    assert "notes.png: not a PNG, JPEG, GIF or WebP image" in refused.text
    assert ROW.findall(refused.text) == [stored]  # nothing else stored, the list still shown
    empty = manager.post("/media", data={"csrf_token": csrf}, files={"file": ("", b"", "image/png")})
    assert empty.status_code == 422 and "Choose an image file to upload." in empty.text


def test_delete_from_the_page_asks_first_and_keeps_an_image_a_task_names(
    make_api: Callable[..., Api], settings: Settings, api: Api, org: Org
) -> None:
    unnamed, named = _upload(api, org, "spare.png", 3), _upload(api, org, "kept.png", 4)
    project = org.make_project(
        spec={"fields": [{"name": "photo", "type": "image"}], "questions": [{"name": "q", "type": "text"}]}
    )
    made = api.post(
        f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": {"photo": named["reference"]}}
    )
    assert made.status_code == 201, made.text
    owner = _browser(make_api, settings, org.owner)
    assert f'href="/media/{unnamed["id"]}/delete"' in owner.get("/media").text
    asked = owner.get(f"/media/{unnamed['id']}/delete")
    assert asked.status_code == 200 and "Delete spare.png?" in asked.text
    csrf = _csrf(owner, "/media")
    assert owner.post(f"/media/{unnamed['id']}/delete", data={"csrf_token": "forged"}).status_code == 403
    done = owner.post(f"/media/{unnamed['id']}/delete", data={"csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"] == "/media"
    page = owner.get("/media").text
    assert f"Deleted spare.png (media:{unnamed['id']})" in page and ROW.findall(page) == [named["id"]]
    kept = owner.post(f"/media/{named['id']}/delete", data={"csrf_token": csrf})
    assert kept.status_code == 303
    page = owner.get("/media").text
    assert f"is named by task {made.json()['id']}" in page and ROW.findall(page) == [named["id"]]
    manager_actor = org.actor(Role.MANAGER)
    manager = _browser(make_api, settings, manager_actor)
    assert "/delete" not in manager.get("/media").text  # the owner's uploads
    assert manager.get(f"/media/{named['id']}/delete").status_code == 403
    own = _upload(api, org, "mine.png", 5, auth=manager_actor)
    page = manager.get("/media").text
    assert f'href="/media/{own["id"]}/delete"' in page and page.count("by you") == 1
    assert manager.get(f"/media/{own['id']}/delete").status_code == 200
    done = manager.post(f"/media/{own['id']}/delete", data={"csrf_token": _csrf(manager, "/media")})
    assert done.status_code == 303 and own["id"] not in ROW.findall(manager.get("/media").text)
