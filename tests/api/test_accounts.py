"""Accounts: who am I, members (one-time passwords), API keys (shown once, revocable), workers."""

from __future__ import annotations

from .helpers import API, Api, Org, assert_error


def test_me(api: Api, org: Org) -> None:
    me = api.get(f"{API}/me", auth=org.owner)
    assert me.status_code == 200
    body = me.json()
    assert body["organization_id"] == org.id and body["organization_name"] == "Acme"
    assert body["member"]["role"] == "owner" and body["member"]["worker_id"]
    assert "password_hash" not in body["member"]


def test_add_member_then_give_it_a_key(api: Api, org: Org) -> None:
    added = api.post(f"{API}/members", auth=org.owner, json={"email": "Ann@Example.COM", "role": "annotator"})
    assert added.status_code == 201, added.text
    member = added.json()
    assert member["email"] == "ann@example.com" and member["role"] == "annotator"
    assert len(member["password"]) >= 12  # one-time password, shown once
    assert "password" not in api.get(f"{API}/members/{member['id']}", auth=org.owner).json()
    key = api.post(f"{API}/keys", auth=org.owner, json={"name": "ann's key", "member_id": member["id"]})
    assert key.status_code == 201
    secret = key.json()["key"]
    assert secret.startswith("ts_") and key.json()["prefix"] == secret[:10]
    assert api.get(f"{API}/me", auth=secret).json()["member"]["id"] == member["id"]
    # the secret is never shown again
    listed = api.get(f"{API}/keys", auth=org.owner).json()["items"]
    assert secret not in str(listed) and {k["member_id"] for k in listed} == {org.owner.id, member["id"]}
    # a chosen password is not echoed back
    chosen = api.post(f"{API}/members", auth=org.owner, json={"email": "bo@example.com", "password": "x" * 12})
    assert chosen.status_code == 201 and chosen.json()["password"] is None
    assert_error(api.post(f"{API}/members", auth=org.owner, json={"email": "ann@example.com"}), 409, "conflict")


def test_members_and_workers_lists_page(api: Api, org: Org) -> None:
    for _ in range(4):
        org.add_member("annotator")
    ids: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.get(f"{API}/members", auth=org.owner, params=params).json()
        ids += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(ids) == 5 and len(set(ids)) == 5 and ids == sorted(ids)
    workers = api.get(f"{API}/workers", auth=org.owner).json()["items"]
    assert len(workers) == 5 and {w["kind"] for w in workers} == {"human"}


def test_update_member_role_and_disable(api: Api, org: Org) -> None:
    member = org.add_member("annotator")
    r = api.patch(f"{API}/members/{member.id}", auth=org.owner, json={"role": "reviewer", "name": "Rev"})
    assert r.status_code == 200 and r.json()["role"] == "reviewer" and r.json()["name"] == "Rev"
    assert api.get(f"{API}/tasks", auth=member).status_code == 200  # reviewers read tasks
    r = api.patch(f"{API}/members/{member.id}", auth=org.owner, json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled_at"]
    assert_error(api.get(f"{API}/me", auth=member), 401, "unauthenticated")
    r = api.patch(f"{API}/members/{member.id}", auth=org.owner, json={"disabled": False})
    assert api.get(f"{API}/me", auth=member).status_code == 200


def test_revoked_key_stops_working_and_revoking_twice_is_harmless(api: Api, org: Org) -> None:
    member = org.add_member("manager")
    key_id = api.get(f"{API}/keys", auth=member).json()["items"][0]["id"]
    first = api.delete(f"{API}/keys/{key_id}", auth=org.owner)
    assert first.status_code == 200 and first.json()["revoked_at"]
    assert_error(api.get(f"{API}/me", auth=member), 401, "unauthenticated")
    again = api.delete(f"{API}/keys/{key_id}", auth=org.owner)
    assert again.status_code == 200 and again.json()["revoked_at"] == first.json()["revoked_at"]


def test_basic_auth_with_the_key_as_user_name(api: Api, org: Org) -> None:
    r = api.get(f"{API}/me", auth=None, headers={"Authorization": "Basic " + _b64(org.owner.api_key + ":")})
    assert r.status_code == 200 and r.json()["member"]["id"] == org.owner.id


def test_health_and_openapi_need_no_key(api: Api) -> None:
    assert api.get("/healthz").json()["status"] == "ok"
    spec = api.get(f"{API}/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"create_project", "import_tasks", "next_task", "submit_response", "export_project"} <= operations
    assert api.get(f"{API}/docs").status_code == 200


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()
