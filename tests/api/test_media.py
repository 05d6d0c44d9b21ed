"""Media: upload an image (sniffed, not trusted), fetch it back, use it in an image field."""

from __future__ import annotations

from truthset.config import Settings

from .helpers import API, PNG, Api, Org, assert_error, png_bytes


def test_upload_fetch_and_use_an_image(api: Api, org: Org) -> None:
    r = api.post(f"{API}/media", auth=org.owner, files={"file": ("dot.png", PNG, "application/octet-stream")})
    assert r.status_code == 201, r.text
    media = r.json()
    assert media["content_type"] == "image/png" and media["size"] == len(PNG) and media["filename"] == "dot.png"
    assert media["reference"] == f"media:{media['id']}"
    fetched = api.get(f"{API}/media/{media['id']}", auth=org.actor("annotator"))
    assert fetched.status_code == 200 and fetched.content == PNG
    assert fetched.headers["content-type"] == "image/png"
    assert fetched.headers["x-content-type-options"] == "nosniff"
    same = api.post(f"{API}/media", auth=org.owner, files={"file": ("again.png", PNG, "image/png")})
    assert same.json()["id"] == media["id"]  # content-addressed: the same file is stored once
    bigger = api.post(f"{API}/media", auth=org.owner, files={"file": ("b.png", png_bytes(4, 4), "image/png")})
    assert bigger.json()["id"] != media["id"]
    project = org.make_project(
        spec={"fields": [{"name": "photo", "type": "image"}], "questions": [{"name": "q", "type": "text"}]}
    )
    task = api.post(
        f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": {"photo": media["reference"]}}
    )
    assert task.status_code == 201
    bad = api.post(
        f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": {"photo": "file:///etc/passwd"}}
    )
    assert_error(bad, 422, "invalid_input")


def test_non_images_are_rejected(api: Api, org: Org) -> None:
    for name, content in [("a.txt", b"hello"), ("x.png", b"<svg onload=alert(1)>"), ("e.png", b"")]:
        r = api.post(f"{API}/media", auth=org.owner, files={"file": (name, content, "image/png")})
        error = assert_error(r, 422, "invalid_input")
        assert error["details"]["field"] == "file"
    assert_error(api.get(f"{API}/media/0123456789abcdef01234567", auth=org.owner), 404, "not_found")


def test_a_range_is_served_and_an_unusable_range_gets_the_whole_file(api: Api, org: Org) -> None:
    """Starlette answered a malformed or unsatisfiable Range with plain text (400/416), outside the error shape."""
    media = api.post(f"{API}/media", auth=org.owner, files={"file": ("dot.png", PNG, "image/png")}).json()
    url = f"{API}/media/{media['id']}"
    part = api.get(url, auth=org.owner, headers={"Range": "bytes=0-3"})
    assert part.status_code == 206 and part.content == PNG[:4]
    for unusable in ("bytes=abc", "bytes=999999-", "bytes=5-2", "pages=1-2", "nonsense"):
        whole = api.get(url, auth=org.owner, headers={"Range": unusable})
        assert whole.status_code == 200, unusable
        assert whole.content == PNG and whole.headers["content-type"] == "image/png"


def test_a_task_naming_an_image_the_organization_lacks_is_a_422(api: Api, org: Org, other_org: Org) -> None:
    theirs = api.post(f"{API}/media", auth=other_org.owner, files={"file": ("dot.png", PNG, "image/png")}).json()
    project = org.make_project(
        spec={"fields": [{"name": "photo", "type": "image"}], "questions": [{"name": "q", "type": "text"}]}
    )
    for reference in (theirs["reference"], "media:0123456789abcdef01234567"):
        refused = api.post(f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": {"photo": reference}})
        error = assert_error(refused, 422, "invalid_input")
        assert error["details"]["field"] == "data" and f"data.photo: no uploaded image {reference}" in error["message"]


def test_an_image_whose_file_is_gone_is_a_404_saying_so(api: Api, org: Org, settings: Settings) -> None:
    """Starlette failed such a response half-sent (a 500 with a traceback in the log)."""
    media = api.post(f"{API}/media", auth=org.owner, files={"file": ("dot.png", PNG, "image/png")}).json()
    (settings.media_dir / media["sha256"][:2] / media["sha256"]).unlink()
    error = assert_error(api.get(f"{API}/media/{media['id']}", auth=org.owner), 404, "not_found")
    assert f"media {media['id']} has no file in the media store" in error["message"]


def test_a_file_removed_while_its_response_is_sent_is_still_sent_whole(tmp_path) -> None:
    """A prune can unlink the file between the route's open and the sending; the route serves the
    descriptor it opened, so the bytes are sent (before, Starlette's own stat or open failed: a 500)."""
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from truthset.api.routes.media import MediaFileResponse

    image = png_bytes(8, 8)
    path = tmp_path / "blob"

    def serve(request: object) -> MediaFileResponse:
        path.write_bytes(image)
        response = MediaFileResponse(path.open("rb"), media_type="image/png")
        path.unlink()  # the prune's unlink, after the route opened the file
        return response

    client = TestClient(Starlette(routes=[Route("/image", serve)]))
    whole = client.get("/image")
    assert whole.status_code == 200 and whole.content == image
    assert whole.headers["content-length"] == str(len(image))
    part = client.get("/image", headers={"Range": "bytes=2-5"})
    assert part.status_code == 206 and part.content == image[2:6]
    both = client.get("/image", headers={"Range": "bytes=0-1, 4-5"})
    assert both.status_code == 206 and image[0:2] in both.content and image[4:6] in both.content
    assert client.head("/image").status_code == 200


def test_managers_list_the_organizations_uploads_newest_first_and_by_name(api: Api, org: Org, other_org: Org) -> None:
    def upload(name: str, size: int, auth: object = org.owner) -> dict:
        r = api.post(f"{API}/media", auth=auth, files={"file": (name, png_bytes(size, size), "image/png")})
        assert r.status_code == 201, r.text
        return r.json()

    cat, dog, percent = upload("Cat.png", 2), upload("dog.PNG", 3), upload("100%_done.png", 4)
    upload("cat.png", 5, auth=other_org.owner)  # another organization's: never listed here
    listed = api.get(f"{API}/media", auth=org.actor("manager"))
    assert listed.status_code == 200, listed.text
    assert [m["id"] for m in listed.json()["items"]] == [percent["id"], dog["id"], cat["id"]]
    assert listed.json()["items"][0] == percent and listed.json()["next_cursor"] is None
    assert listed.json()["items"][2]["width"] == 2 and listed.json()["items"][2]["reference"] == cat["reference"]

    first = api.get(f"{API}/media", auth=org.owner, params={"limit": 2}).json()
    rest = api.get(f"{API}/media", auth=org.owner, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [m["id"] for m in first["items"] + rest["items"]] == [percent["id"], dog["id"], cat["id"]]
    assert rest["next_cursor"] is None

    def named(text: str) -> list[str]:
        r = api.get(f"{API}/media", auth=org.owner, params={"filename": text})
        assert r.status_code == 200, r.text
        return [m["filename"] for m in r.json()["items"]]

    assert named("CAT") == ["Cat.png"] and named(".png") == ["100%_done.png", "dog.PNG", "Cat.png"]
    assert named("%") == ["100%_done.png"] and named("_") == ["100%_done.png"]  # wildcards match themselves
    assert named("c%t") == [] and named("fish") == []
    assert_error(api.get(f"{API}/media", auth=org.actor("annotator")), 403, "forbidden")
    assert_error(api.get(f"{API}/media", auth=org.owner, params={"filename": "x" * 301}), 422, "invalid_input")
    assert_error(api.get(f"{API}/media", auth=org.owner, params={"filename": "a\x00b"}), 422, "invalid_input")


def test_delete_an_image_no_task_names(api: Api, org: Org, other_org: Org) -> None:
    def upload(size: int, auth: object = org.owner) -> dict:
        r = api.post(f"{API}/media", auth=auth, files={"file": ("x.png", png_bytes(size, size), "image/png")})
        assert r.status_code == 201, r.text
        return r.json()

    unnamed, named, theirs = upload(5), upload(6), upload(7, auth=other_org.owner)
    project = org.make_project(
        spec={"fields": [{"name": "photo", "type": "image"}], "questions": [{"name": "q", "type": "text"}]}
    )
    task = api.post(
        f"{API}/projects/{project['id']}/tasks", auth=org.owner, json={"data": {"photo": named["reference"]}}
    )
    assert task.status_code == 201, task.text
    assert_error(api.delete(f"{API}/media/{unnamed['id']}", auth=org.actor("manager")), 403, "forbidden")
    assert api.delete(f"{API}/media/{unnamed['id']}", auth=org.actor("admin")).status_code == 204
    assert_error(api.get(f"{API}/media/{unnamed['id']}", auth=org.owner), 404, "not_found")
    refused = assert_error(api.delete(f"{API}/media/{named['id']}", auth=org.owner), 409, "conflict")
    assert refused["details"] == {"task_id": task.json()["id"]} and "is named by task" in refused["message"]
    assert api.get(f"{API}/media/{named['id']}", auth=org.owner).status_code == 200
    assert_error(api.delete(f"{API}/media/{theirs['id']}", auth=org.owner), 404, "not_found")
    assert api.get(f"{API}/media/{theirs['id']}", auth=other_org.owner).status_code == 200
    # a manager deletes an image they uploaded, never another member's
    manager = org.actor("manager")
    own = upload(8, auth=manager)
    assert own["created_by"] == manager.id and named["created_by"] == org.owner.id
    assert_error(api.delete(f"{API}/media/{named['id']}", auth=manager), 403, "forbidden")
    assert api.delete(f"{API}/media/{own['id']}", auth=manager).status_code == 204


def test_a_thumbnail_is_made_once_and_goes_with_its_image(
    api: Api, org: Org, other_org: Org, settings: Settings
) -> None:
    import io

    from PIL import Image

    big = io.BytesIO()
    Image.new("RGBA", (600, 300), (10, 200, 30, 128)).save(big, format="PNG")
    image = api.post(f"{API}/media", auth=org.owner, files={"file": ("wide.png", big.getvalue(), "image/png")}).json()
    url = f"{API}/media/{image['id']}/thumbnail"
    first = api.get(url, auth=org.actor("annotator"))  # whoever may see the image may see it small
    assert first.status_code == 200 and first.headers["content-type"] == "image/webp"
    assert first.headers["content-security-policy"] and first.headers["x-content-type-options"] == "nosniff"
    with Image.open(io.BytesIO(first.content)) as small:
        assert small.format == "WEBP" and small.size == (256, 128) and small.mode == "RGBA"
    kept = settings.media_dir / "thumbnails" / image["sha256"][:2] / f"{image['sha256']}.webp"
    assert kept.is_file() and api.get(url, auth=org.owner).content == first.content  # made once, kept
    tiny = api.post(f"{API}/media", auth=org.owner, files={"file": ("dot.png", PNG, "image/png")}).json()
    with Image.open(io.BytesIO(api.get(f"{API}/media/{tiny['id']}/thumbnail", auth=org.owner).content)) as small:
        assert small.size == (1, 1)  # never made bigger
    assert_error(api.get(url, auth=other_org.owner), 404, "not_found")
    assert api.delete(f"{API}/media/{image['id']}", auth=org.owner).status_code == 204
    assert not kept.exists()  # the file's thumbnail went with it
    assert_error(api.get(url, auth=org.owner), 404, "not_found")
