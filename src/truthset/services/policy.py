"""Who may do what: two small tables.

``ALLOWED``: the actions on the organization's work (projects, tasks, answers, media) and the roles
allowed each. ``REACH``: who may act on whom, for every action on members and their API keys (add
a member, change a role, disable, create, list or revoke keys...). One table for all of those, so
no action on members can be laxer than another (an admin who may not make a key for an owner may
not revoke one either).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from truthset.domain import Principal, Role
from truthset.errors import Forbidden

_STAFF = frozenset({Role.OWNER, Role.ADMIN})
_MANAGERS = _STAFF | {Role.MANAGER}
_READERS = _MANAGERS | {Role.REVIEWER}
_EVERYONE = _READERS | {Role.ANNOTATOR}


class Action(StrEnum):
    READ_MEMBERS = "read_members"
    MANAGE_PROJECTS = "manage_projects"
    READ_PROJECTS = "read_projects"
    MANAGE_TASKS = "manage_tasks"
    READ_TASKS = "read_tasks"
    ANNOTATE = "annotate"
    UPLOAD_MEDIA = "upload_media"
    READ_MEDIA = "read_media"
    LIST_MEDIA = "list_media"  # list the organization's uploads (names, sizes), not only fetch one by id
    READ_QUALITY = "read_quality"  # agreement and every worker's figures (a member reads their own)
    READ_JOBS = "read_jobs"  # every job of the organization (a member reads the jobs they started)
    MANAGE_JOBS = "manage_jobs"  # cancel any job of the organization (a member cancels their own)
    REVIEW = "review"  # take tasks from the review queue and accept, reject or fix their results
    MANAGE_WEBHOOKS = "manage_webhooks"  # create, see, change and delete webhooks; see and replay deliveries
    CREATE_ORGANIZATION = "create_organization"  # found another organization, becoming its owner
    DELETE_PROJECT_DATA = "delete_project_data"  # delete a project with its tasks and answers (for good)
    DELETE_MEDIA = "delete_media"  # remove the uploaded images no task names (for good)


ALLOWED: dict[Action, frozenset[Role]] = {
    Action.READ_MEMBERS: _MANAGERS,
    Action.MANAGE_PROJECTS: _MANAGERS,
    Action.READ_PROJECTS: _EVERYONE,
    Action.MANAGE_TASKS: _MANAGERS,
    Action.READ_TASKS: _READERS,
    Action.ANNOTATE: _EVERYONE,
    Action.UPLOAD_MEDIA: _MANAGERS,
    Action.READ_MEDIA: _EVERYONE,
    Action.LIST_MEDIA: _MANAGERS,
    Action.READ_QUALITY: _MANAGERS,
    Action.READ_JOBS: _MANAGERS,
    Action.MANAGE_JOBS: _MANAGERS,
    Action.REVIEW: _READERS,
    Action.MANAGE_WEBHOOKS: _MANAGERS,  # like exports: a webhook can send out any of the organization's data
    Action.CREATE_ORGANIZATION: frozenset({Role.OWNER}),
    Action.DELETE_PROJECT_DATA: _STAFF,  # what no export or review can undo: owners and admins only
    Action.DELETE_MEDIA: _STAFF,
}


def allowed(principal: Principal, action: Action) -> bool:
    return principal.role in ALLOWED[action]


def require(principal: Principal, action: Action) -> None:
    if not allowed(principal, action):
        raise Forbidden(f"the {principal.role} role may not {action.replace('_', ' ')}")


# --- acting on members and their keys ------------------------------------------------------------


class MemberAction(StrEnum):
    """Every action on a member or a member's API keys. The value reads in an error message."""

    ADD_MEMBER = "add a member as"
    RENAME_MEMBER = "rename a member who is"
    CHANGE_ROLE = "change a role from or to"
    DISABLE_MEMBER = "disable or enable a member who is"
    CREATE_KEY = "create an API key for a member who is"
    LIST_KEYS = "list the API keys of a member who is"
    REVOKE_KEY = "revoke an API key of a member who is"
    RESET_PASSWORD = "reset the password of a member who is"


#: Who may act on whom: the roles each role may act on, alike for every :class:`MemberAction`.
#: Nobody below owner acts on an owner; an admin acts on the roles below admin; the others on nobody.
REACH: dict[Role, frozenset[Role]] = {
    Role.OWNER: frozenset(Role),
    Role.ADMIN: frozenset({Role.MANAGER, Role.REVIEWER, Role.ANNOTATOR}),
    Role.MANAGER: frozenset(),
    Role.REVIEWER: frozenset(),
    Role.ANNOTATOR: frozenset(),
}

#: What every member may do to themselves, whatever ``REACH`` says: look after their own keys.
SELF_SERVICE: frozenset[MemberAction] = frozenset(
    {MemberAction.CREATE_KEY, MemberAction.LIST_KEYS, MemberAction.REVOKE_KEY}
)


def reachable_roles(principal: Principal) -> frozenset[Role]:
    """The roles ``principal`` may act on (for a query that lists what it may see, e.g. keys)."""
    return REACH[principal.role]


def may_act_on(principal: Principal, action: MemberAction, member_id: str | None, roles: Iterable[Role]) -> bool:
    """May ``principal`` take ``action`` on the member ``member_id`` (None: a member yet to be added)?

    ``roles``: every role the action touches, e.g. the member's role now and the role it is given.
    """
    if member_id == principal.member_id and action in SELF_SERVICE:
        return True
    return all(Role(role) in REACH[principal.role] for role in roles)


def require_on_member(principal: Principal, action: MemberAction, member_id: str | None, *roles: Role) -> None:
    """The one check every action on members and keys makes: :class:`Forbidden` unless ``REACH`` allows."""
    if not may_act_on(principal, action, member_id, roles):
        names = " or ".join(sorted({f"{Role(r)}" for r in roles if Role(r) not in REACH[principal.role]}))
        raise Forbidden(f"the {principal.role} role may not {action} {names or 'that'}")
