"""Who may do what: one small table of actions and the roles allowed each."""

from __future__ import annotations

from enum import StrEnum

from truthset.domain import Principal, Role
from truthset.errors import Forbidden

_STAFF = frozenset({Role.OWNER, Role.ADMIN})
_MANAGERS = _STAFF | {Role.MANAGER}
_READERS = _MANAGERS | {Role.REVIEWER}
_EVERYONE = _READERS | {Role.ANNOTATOR}


class Action(StrEnum):
    MANAGE_MEMBERS = "manage_members"
    MANAGE_KEYS = "manage_keys"  # keys of other members
    READ_MEMBERS = "read_members"
    MANAGE_PROJECTS = "manage_projects"
    READ_PROJECTS = "read_projects"
    MANAGE_TASKS = "manage_tasks"
    READ_TASKS = "read_tasks"
    ANNOTATE = "annotate"
    UPLOAD_MEDIA = "upload_media"
    READ_MEDIA = "read_media"


ALLOWED: dict[Action, frozenset[Role]] = {
    Action.MANAGE_MEMBERS: _STAFF,
    Action.MANAGE_KEYS: _STAFF,
    Action.READ_MEMBERS: _MANAGERS,
    Action.MANAGE_PROJECTS: _MANAGERS,
    Action.READ_PROJECTS: _EVERYONE,
    Action.MANAGE_TASKS: _MANAGERS,
    Action.READ_TASKS: _READERS,
    Action.ANNOTATE: _EVERYONE,
    Action.UPLOAD_MEDIA: _MANAGERS,
    Action.READ_MEDIA: _EVERYONE,
}


def allowed(principal: Principal, action: Action) -> bool:
    return principal.role in ALLOWED[action]


def require(principal: Principal, action: Action) -> None:
    if not allowed(principal, action):
        raise Forbidden(f"the {principal.role} role may not {action.replace('_', ' ')}")
