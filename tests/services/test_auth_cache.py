"""Resolved API keys are remembered briefly; revocations in this process apply at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from truthset.errors import Unauthenticated
from truthset.schemas import MemberUpdate
from truthset.services import accounts
from truthset.storage import Database

if TYPE_CHECKING:
    from conftest import Org


def test_revoking_a_key_applies_at_once_in_this_process(org: Org) -> None:
    actor = org.add_member("annotator")
    key_id = accounts.authenticate(org.db, actor.api_key).api_key_id  # now remembered
    accounts.revoke_key(org.db, org.owner.principal, key_id)
    with pytest.raises(Unauthenticated):
        accounts.authenticate(org.db, actor.api_key)


def test_a_role_change_applies_at_once_in_this_process(org: Org) -> None:
    actor = org.add_member("annotator")
    assert accounts.authenticate(org.db, actor.api_key).role == "annotator"
    accounts.update_member(org.db, org.owner.principal, actor.id, MemberUpdate(role="reviewer"))
    assert accounts.authenticate(org.db, actor.api_key).role == "reviewer"
    accounts.update_member(org.db, org.owner.principal, actor.id, MemberUpdate(disabled=True))
    with pytest.raises(Unauthenticated):
        accounts.authenticate(org.db, actor.api_key)


def test_another_process_notices_within_the_cache_window(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another server process (here: another Database on the same file) keeps a revoked key for at
    most AUTH_CACHE_SECONDS; the clock is moved rather than waited for."""
    other_process = Database(str(org.db.url.render_as_string(hide_password=False)))
    actor = org.add_member("annotator")
    principal = accounts.authenticate(other_process, actor.api_key)
    accounts.revoke_key(org.db, org.owner.principal, principal.api_key_id)
    assert accounts.authenticate(other_process, actor.api_key) == principal  # still remembered there

    now = accounts.time.monotonic()
    monkeypatch.setattr(accounts.time, "monotonic", lambda: now + accounts.AUTH_CACHE_SECONDS + 0.01)
    with pytest.raises(Unauthenticated):
        accounts.authenticate(other_process, actor.api_key)
    other_process.dispose()
