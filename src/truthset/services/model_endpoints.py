"""What the jobs that call a model's HTTP endpoint share (the LLM labeler, the model-server job).

Both take an optional API key that must not sit in a job's payload in the clear (sealed with the
server's key, as webhook secrets are, and unsealed only by the runner), name the question the model
answers, and refuse at request time an endpoint the runner's network guard would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from truthset.config import Settings
from truthset.errors import InvalidInput
from truthset.questions import QuestionConfig
from truthset.services import netguard, webhooks
from truthset.services.jobs import JobFailed
from truthset.storage.ids import new_id


def seal_api_key(settings: Settings, organization_id: str, purpose: str, api_key: str) -> dict[str, str]:
    """The key as a job payload keeps it: ``{"id", "sealed"}`` (the id makes each seal's context)."""
    key_id = new_id()
    return {"id": key_id, "sealed": webhooks.seal(settings, organization_id, f"{purpose}/{key_id}", api_key)}


def unseal_api_key(payload: Mapping[str, Any], settings: Settings, organization_id: str, purpose: str) -> str | None:
    """The payload's sealed key in the clear (None without one); a key the server cannot read fails the job."""
    sealed = payload.get("api_key")
    if not isinstance(sealed, Mapping):
        return None
    try:
        return webhooks.unseal(settings, organization_id, f"{purpose}/{sealed['id']}", sealed["sealed"])
    except webhooks.SecretUnreadable as exc:
        raise JobFailed(str(exc).replace("webhook's secret", "API key")) from None


def question_named(questions: list[QuestionConfig], name: str) -> QuestionConfig:
    """The spec's question ``name``, or a 422 naming the field and the questions there are."""
    found = next((q for q in questions if q.name == name), None)
    if found is None:
        names = ", ".join(q.name for q in questions)
        raise InvalidInput(
            f"question: the spec has no question {name!r} (it has: {names})", details={"field": "question"}
        )
    return found


def check_base_url(base_url: str, path: str, settings: Settings) -> None:
    """Refuse at once what the runner's guard would refuse (same settings), naming ``base_url``."""
    try:
        netguard.check_url(f"{base_url.rstrip('/')}{path}", netguard.Guard.from_settings(settings))
    except InvalidInput as exc:
        message = str(exc).removeprefix("url: ")
        # the same kind of error (url_refused, fetch_failed), naming the request's field
        raise type(exc)(f"base_url: {message}", details={**exc.details, "field": "base_url"}) from None
