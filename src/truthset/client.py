"""The Python SDK: a typed, synchronous client for the truthset REST API (``/api/v1``).

::

    import truthset

    with truthset.Client("http://127.0.0.1:8000", "ts_...") as client:
        project = client.projects.create("Sentiment", spec={...}, overlap=3)
        client.tasks.import_tasks(project.id, [{"data": {"text": "great"}}])
        while (assignment := client.queue.next_task(project.id)) is not None:
            client.queue.submit(assignment.task.id, {"sentiment": "positive"}, assignment_id=assignment.id)

Every method returns the pydantic models of :mod:`truthset.schemas`; every failure is an
:class:`ApiError` (or a subclass) built from the API's one error shape
``{"error": {"code", "message", "details"}}``. The client never imports the server's layers
(storage, services, api): it speaks HTTP only.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import orjson
from pydantic import BaseModel

from truthset import __version__
from truthset.schemas import (
    AgreementOut,
    ApiKeyCreated,
    ApiKeyOut,
    AssignmentOut,
    BatchOut,
    DashboardOut,
    GoldImportReport,
    GoldOut,
    HistoryStep,
    ImportReport,
    JobOut,
    Me,
    MediaOut,
    MemberOut,
    OrganizationCreated,
    PasswordChanged,
    PasswordReset,
    PredictionOut,
    PredictionReport,
    ProjectModelOut,
    ProjectOut,
    QualityModelOut,
    QualityModelsOut,
    QuestionTypeOut,
    QueueTaskOut,
    ResponseOut,
    ReviewItem,
    ReviewOut,
    ReviewResult,
    SpecChecked,
    SubmitResult,
    TaskBulkResult,
    TaskCreated,
    TaskOut,
    WebhookCreated,
    WebhookDeliveryDetail,
    WebhookDeliveryOut,
    WebhookOut,
    WorkerFigures,
    WorkerOut,
    WorkerStanding,
    WorkerStats,
)

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "ImportRejectedError",
    "InvalidInputError",
    "MemberCreated",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "TooLargeError",
]

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = 30.0
RETRY_STATUSES = frozenset({502, 503, 504})
_IMPORT_CHUNK_BYTES = 256 * 1024

M = TypeVar("M", bound=BaseModel)
PathLike = str | os.PathLike[str]


# --- errors ------------------------------------------------------------------------------------


class ApiError(Exception):
    """A failed API call: HTTP ``status``, the API's error ``code``, ``message`` and ``details``."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "error",
        details: Any = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details
        self.response = response

    def __str__(self) -> str:
        where = f"{self.status} " if self.status is not None else ""
        return f"{where}{self.code}: {self.message}"


class ApiConnectionError(ApiError):
    """The server could not be reached (or the connection broke) and retries were exhausted."""


class BadRequestError(ApiError):
    """400: the request was malformed."""


class AuthenticationError(ApiError):
    """401: missing, unknown or revoked API key."""


class PermissionDeniedError(ApiError):
    """403: your role may not do this."""


class NotFoundError(ApiError):
    """404: missing, or owned by another organization (the two look the same on purpose)."""


class ConflictError(ApiError):
    """409: the request contradicts stored state (duplicate, already answered, wrong status)."""


class TooLargeError(ApiError):
    """413: a body, upload or task over its size limit."""


class InvalidInputError(ApiError):
    """422: invalid input; ``details`` names the field(s)."""


class ImportRejectedError(InvalidInputError):
    """An import that stored nothing because of bad lines (or an import job that failed or was canceled).

    ``report``: the :class:`~truthset.schemas.ImportReport` naming the bad lines, when there is one;
    ``job``: the import job, for an import that ran as one.
    """

    def __init__(
        self, message: str, *, report: ImportReport | None = None, job: JobOut | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("status", 422)
        kwargs.setdefault("code", "invalid_input")
        super().__init__(message, **kwargs)
        self.report = report
        self.job = job


class RateLimitError(ApiError):
    """429: too many requests."""


class ServerError(ApiError):
    """5xx: a server-side failure (a 500 is a bug in truthset)."""


_ERRORS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
    422: InvalidInputError,
    429: RateLimitError,
}


def error_from_response(response: httpx.Response) -> ApiError:
    """Build the exception for a failed response from the one error shape (or whatever came back)."""
    status = response.status_code
    code, message, details = "error", response.reason_phrase or f"HTTP {status}", None
    try:
        body = orjson.loads(response.read())
    except (orjson.JSONDecodeError, httpx.HTTPError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
        details = error.get("details")
    cls = _ERRORS.get(status) or (ServerError if status >= 500 else ApiError)
    if status == 422 and isinstance(details, dict) and isinstance(details.get("report"), dict):
        report = ImportReport.model_validate(details["report"])
        return ImportRejectedError(message, report=report, code=code, details=details, response=response)
    return cls(message, status=status, code=code, details=details, response=response)


# --- the client --------------------------------------------------------------------------------


class Client:
    """A truthset API client (synchronous, over httpx).

    ``url`` is the server's base URL (``http://host:port``); ``api_key`` an API key (``ts_...``).
    Both default to the ``TRUTHSET_URL`` and ``TRUTHSET_API_KEY`` environment variables.

    Retries: connection failures and 502/503/504 answers are retried with exponential backoff
    (``max_retries`` times) for idempotent calls — reads, updates, finalize/cancel, revoke, task
    creation with a ``unique_id``, and submits (which always carry an ``Idempotency-Key``). Other
    calls are retried only when the connection could not be opened at all, so nothing is sent twice,
    or when the server answered 503 ``busy`` (it changed nothing: for instance a lease whose only
    free tasks were being written by other requests at that instant).

    ``transport`` is passed to :class:`httpx.Client` (a mock transport in tests, for instance).
    Use the client as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 3,
        backoff: float = 0.25,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        url = url or os.environ.get("TRUTHSET_URL")
        api_key = api_key or os.environ.get("TRUTHSET_API_KEY")
        if not url:
            raise ValueError("a server URL is required (or set TRUTHSET_URL)")
        if not api_key:
            raise ValueError("an API key is required (or set TRUTHSET_API_KEY)")
        self.url = url.rstrip("/")
        self.max_retries = max_retries
        self.backoff = backoff
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._http = httpx.Client(
            base_url=self.url + API_PREFIX,
            headers={
                "Authorization": f"Bearer {api_key}",
                "User-Agent": f"truthset-python/{__version__}",
                "Accept": "application/json",
                **(headers or {}),
            },
            timeout=self._timeout,
            transport=transport,
        )
        self.members = Members(self)
        self.keys = Keys(self)
        self.projects = Projects(self)
        self.batches = Batches(self)
        self.tasks = Tasks(self)
        self.queue = Queue(self)
        self.reviews = Reviews(self)
        #: ``client.workers()`` lists the organization's workers; ``client.workers.stats(...)`` one's figures
        self.workers = Workers(self)
        self.jobs = Jobs(self)
        self.webhooks = Webhooks(self)
        self.organizations = Organizations(self)
        self.imports = Imports(self)
        self.models = Models(self)

    # -- lifecycle --

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<truthset.Client {self.url}>"

    # -- top-level calls --

    def me(self) -> Me:
        """Who the API key belongs to: the organization and the member."""
        return Me.model_validate(self._request("GET", "/me").json())

    def change_password(self, current_password: str, new_password: str) -> PasswordChanged:
        """Change your own password (the current one is required); your browser sessions end."""
        body = {"current_password": current_password, "new_password": new_password}
        return self._json("POST", "/me/password", PasswordChanged, json=body, retry=False)

    def question_types(self) -> list[QuestionTypeOut]:
        """Question types the server knows (built-ins and installed plugins), with their config schemas."""
        return [QuestionTypeOut.model_validate(item) for item in self._request("GET", "/question-types").json()]

    def export(
        self,
        project_id: str,
        *,
        status: str | None = None,
        batch_id: str | None = None,
        all_statuses: bool = False,
        min_confidence: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Iterate the project's export rows (JSONL, streamed): completed tasks with results by default.

        ``min_confidence`` keeps only tasks whose result is at least that confident.
        """
        params = _params(
            status=status, batch_id=batch_id, all_statuses=all_statuses or None, min_confidence=min_confidence
        )
        return self._stream_jsonl(f"/projects/{project_id}/export", params)

    def start_export(
        self,
        project_id: str,
        *,
        format: str = "jsonl",
        status: str | None = None,
        all_statuses: bool = False,
        batch_id: str | None = None,
        min_confidence: float | None = None,
        review_status: str | None = None,
        updated_since: str | datetime | None = None,
        questions: Sequence[str] | None = None,
    ) -> JobOut:
        """Start an export job (the way to export a big project): returns the queued job.

        Follow it with ``client.jobs.wait(job.id)``, then :meth:`download_export`. ``updated_since``
        takes the ``cursor`` of a previous export job's result: a delta export of what changed since.
        ``questions`` narrows the file to the questions named (e.g. the boxes question of a YOLO export).
        """
        body = _body(
            format=format,
            status=status,
            all_statuses=all_statuses or None,
            batch_id=batch_id,
            min_confidence=min_confidence,
            review_status=review_status,
            updated_since=updated_since.isoformat() if isinstance(updated_since, datetime) else updated_since,
            questions=list(questions) if questions is not None else None,
        )
        return self._json("POST", f"/projects/{project_id}/exports", JobOut, json=body)

    def download_export(
        self, job_id: str, path: PathLike | None = None, *, progress: Callable[[int], None] | None = None
    ) -> Path:
        """Download a finished export job's file to ``path`` (default: the name the server gives it, in
        the current directory); returns the path. The file appears only once complete and its
        SHA-256 checked (``path.part`` meanwhile). ``progress`` gets the bytes received so far."""
        with self._http.stream("GET", f"/exports/{job_id}/file", timeout=self._long_timeout()) as response:
            if response.status_code >= 400:
                response.read()
                raise error_from_response(response)
            target = Path(path) if path is not None else Path(_attachment_name(response) or f"export-{job_id}")
            part = target.with_name(target.name + ".part")
            digest, received = hashlib.sha256(), 0
            with part.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if progress is not None:
                        progress(received)
            expected = response.headers.get("X-Content-SHA256")
        if expected and digest.hexdigest() != expected:
            part.unlink(missing_ok=True)
            raise ApiError(f"export {job_id}: the download does not match its SHA-256; try again", code="checksum")
        part.replace(target)
        return target

    def export_to(
        self,
        project_id: str,
        path: PathLike,
        *,
        format: str = "jsonl",
        timeout: float | None = None,
        progress: Callable[[JobOut], None] | None = None,
        **filters: Any,
    ) -> JobOut:
        """Export to a file in one call: start the job, wait for it (``progress`` gets the job after
        each poll), download its file to ``path``. Returns the finished job (``result`` has the task
        count, size, sha256 and the ``cursor`` for the next delta export); raises ``ApiError`` if
        the job failed or was canceled."""
        job = self.jobs.wait(self.start_export(project_id, format=format, **filters).id, timeout, progress=progress)
        if job.status != "succeeded":
            raise ApiError(f"export job {job.id} {job.status}: {job.error or 'no file'}", code=f"job_{job.status}")
        self.download_export(job.id, path)
        return job

    def upload_media(
        self, file: PathLike | bytes, *, filename: str | None = None, content_type: str | None = None
    ) -> MediaOut:
        """Upload an image (a path or bytes). Use ``.reference`` (``media:<id>``) as an image field's value."""
        if isinstance(file, bytes | bytearray):
            content = bytes(file)
            name = filename or "upload"
        else:
            path = Path(file)
            content = path.read_bytes()
            name = filename or path.name
        files = {"file": (name, content, content_type or "application/octet-stream")}
        response = self._request("POST", "/media", files=files, timeout=self._long_timeout(), retry=True)
        return MediaOut.model_validate(response.json())

    def list_media(self, *, filename: str | None = None, page_size: int = 100) -> Iterator[MediaOut]:
        """The organization's uploaded images, newest first (managers and up); ``filename`` keeps those
        whose file name contains it, ignoring case."""
        return self._paginate("/media", _params(filename=filename), MediaOut, page_size)

    def download_media(self, media_id: str, *, thumbnail: bool = False) -> bytes:
        """An uploaded image's bytes; ``thumbnail``: the image at most 256 pixels a side, as WebP."""
        path = f"/media/{media_id}/thumbnail" if thumbnail else f"/media/{media_id}"
        return self._request("GET", path, timeout=self._long_timeout()).content

    def delete_media(self, media_id: str) -> None:
        """Remove an uploaded image no task names, at once (owners and admins); a task naming it
        raises ``ConflictError`` naming the task."""
        self._request("DELETE", f"/media/{media_id}")

    def prune_media(self, older_than_hours: float = 24.0) -> JobOut:
        """Remove, for good, the uploaded images no task names, uploaded more than ``older_than_hours``
        ago (owners and admins): a ``media.prune`` job (follow it with ``client.jobs.wait``)."""
        body = {"older_than_hours": older_than_hours}
        return self._json("POST", "/media/pruning", JobOut, json=body, retry=False)

    def upload_predictions(
        self,
        project_id: str,
        predictions: Iterable[Mapping[str, Any]],
        *,
        model: str,
        version: str,
        on_error: str = "reject",
        chunk_size: int = 1000,
    ) -> PredictionReport:
        """Upload a model version's predictions: dicts of ``task_id`` (or ``unique_id``), ``question``,
        ``answer`` and ``score`` in [0, 1]. Managers and above (docs/models.md).

        Sent in requests of about ``chunk_size`` predictions, a task's predictions always together
        (a model version answers a task once). ``on_error="reject"`` stops at the first request with a
        bad prediction, raising :class:`InvalidInputError` naming it (the requests before it are
        stored; uploading again is safe: identical predictions change nothing); ``"skip"`` stores every
        good one. The reports of the requests are summed; ``errors[].index`` counts from the first
        prediction passed.
        """
        report: PredictionReport | None = None
        for offset, chunk in _prediction_chunks(predictions, chunk_size):
            body = {"model": model, "version": version, "on_error": on_error, "predictions": chunk}
            try:
                part = self._json(
                    "POST", f"/projects/{project_id}/predictions", PredictionReport, json=body, retry=True
                )
            except InvalidInputError as exc:
                _shift_prediction_errors(exc, offset)
                raise
            report = part if report is None else _sum_reports(report, part, offset)
        if report is None:
            raise ValueError("no predictions to upload")
        return report

    def start_llm_labeling(
        self,
        project_id: str,
        *,
        question: str,
        base_url: str,
        model: str,
        limit: int | None = None,
        version: str | None = None,
        api_key: str | None = None,
        **options: Any,
    ) -> JobOut:
        """Start a job that asks an OpenAI-compatible endpoint (``base_url`` up to ``/v1``) to answer
        ``question`` on the project's gold, then pending, tasks; its valid answers become predictions of the model
        worker ``llm:<model>@<version>``. Managers and above (docs/models.md, "LLM labeler").

        ``options``: ``default_score``, ``temperature``, ``max_tokens``, ``concurrency``. Follow the
        job with ``client.jobs.wait(job.id)``: its ``result`` counts stored, invalid and failed
        answers and the tokens spent. ``api_key`` is stored sealed in the job, never shown.
        """
        body = {"question": question, "base_url": base_url, "model": model, "limit": limit, "version": version}
        body = {k: v for k, v in {**body, "api_key": api_key, **options}.items() if v is not None}
        return self._json("POST", f"/projects/{project_id}/llm-labels", JobOut, json=body)

    def start_model_server_predictions(
        self,
        project_id: str,
        *,
        question: str,
        base_url: str,
        name: str | None = None,
        limit: int | None = None,
        api_key: str | None = None,
        **options: Any,
    ) -> JobOut:
        """Start a job that sends an external model server (``base_url``: its root, serving
        ``/health``, ``/train``, ``/predict``) the project's new trusted results, then stores its
        answers to ``question`` on the gold, then pending, tasks as predictions of the model worker
        ``<name>@<version>``. Managers and above (docs/models.md, "External model servers").

        ``options``: ``batch_size``, ``train``, ``include_gold``, ``default_score``. Follow the job
        with ``client.jobs.wait(job.id)``: its ``result`` counts stored, invalid and abstained answers
        and what ``/train`` accepted. ``api_key`` is stored sealed in the job, never shown.
        """
        body = {"question": question, "base_url": base_url, "name": name, "limit": limit, "api_key": api_key}
        body = {k: v for k, v in {**body, **options}.items() if v is not None}
        return self._json("POST", f"/projects/{project_id}/model-server-predictions", JobOut, json=body)

    # -- plumbing --

    def _long_timeout(self) -> httpx.Timeout:
        """For imports, exports and uploads: the server answers once it has read the whole body."""
        return httpx.Timeout(self._timeout.connect, read=None, write=self._timeout.write, pool=self._timeout.pool)

    def _request(
        self,
        method: str,
        path: str,
        *,
        retry: bool | None = None,
        ok: Iterable[int] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request, retrying as the class docstring says; raise :class:`ApiError` on failure.

        ``retry``: None retries idempotent methods (GET, PUT, PATCH, DELETE, HEAD); True retries any
        method; False retries only when the connection could not be opened. ``ok`` lists non-2xx
        statuses returned rather than raised.
        """
        idempotent = method in ("GET", "HEAD", "PUT", "PATCH", "DELETE") if retry is None else retry
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                safe = idempotent or isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if not safe or attempt >= self.max_retries or _unreplayable(kwargs):
                    raise ApiConnectionError(f"{method} {path}: {exc!r}", code="connection_error") from exc
            else:
                if response.status_code < 400 or response.status_code in ok:
                    return response
                retryable = response.status_code in RETRY_STATUSES and (idempotent or _rolled_back(response))
                if not (retryable and attempt < self.max_retries and not _unreplayable(kwargs)):
                    raise error_from_response(response)
                response.close()
            self._sleep(attempt)
            attempt += 1

    def _sleep(self, attempt: int) -> None:
        if self.backoff > 0:
            delay = min(self.backoff * (2**attempt), 10.0)
            time.sleep(delay * (0.5 + random.random() / 2))

    def _json(self, method: str, path: str, model: type[M], **kwargs: Any) -> M:
        return model.model_validate(self._request(method, path, **kwargs).json())

    def _paginate(self, path: str, params: dict[str, Any], model: type[M], page_size: int) -> Iterator[M]:
        """Follow ``next_cursor`` lazily: the next page is fetched when the iterator reaches it."""

        def pages() -> Iterator[M]:
            cursor: str | None = None
            while True:
                query = {**params, "limit": page_size}
                if cursor is not None:
                    query["cursor"] = cursor
                body = self._request("GET", path, params=query).json()
                for item in body["items"]:
                    yield model.model_validate(item)
                cursor = body.get("next_cursor")
                if not cursor:
                    return

        return pages()

    def _stream_jsonl(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        def rows() -> Iterator[dict[str, Any]]:
            attempt = 0
            while True:
                try:
                    with self._http.stream("GET", path, params=params, timeout=self._long_timeout()) as response:
                        if response.status_code >= 400:
                            if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                                raise _Retry
                            raise error_from_response(response)
                        for line in response.iter_lines():
                            if line.strip():
                                yield orjson.loads(line)
                        return
                except _Retry:
                    pass
                except httpx.TransportError as exc:
                    # Only retry before the first row: a restart mid-stream would repeat rows.
                    if attempt >= self.max_retries or not isinstance(exc, httpx.ConnectError):
                        raise ApiConnectionError(f"GET {path}: {exc!r}", code="connection_error") from exc
                self._sleep(attempt)
                attempt += 1

        return rows()


class _Retry(Exception):
    pass


def _attachment_name(response: httpx.Response) -> str | None:
    """The file name of a Content-Disposition header, as a bare name (never a path)."""
    disposition = response.headers.get("content-disposition", "")
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename" and value:
            return Path(value.strip('"')).name or None
    return None


def _rolled_back(response: httpx.Response) -> bool:
    """A truthset 503 ``busy``: the request lost a race and changed nothing, so any call may be sent again
    (a lease whose only free tasks were being written by other requests, a lock deadline)."""
    if response.status_code != 503:
        return False
    try:
        error = orjson.loads(response.read()).get("error")
    except (orjson.JSONDecodeError, httpx.HTTPError, AttributeError):
        return False
    return isinstance(error, dict) and error.get("code") == "busy"


def _unreplayable(kwargs: Mapping[str, Any]) -> bool:
    """A body that is a one-shot iterator cannot be sent twice."""
    content = kwargs.get("content")
    return content is not None and not isinstance(content, bytes | str)


def _params(**values: Any) -> dict[str, Any]:
    """Query parameters without the unset ones; booleans as the API spells them."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[key] = str(value)
    return out


def _body(**values: Any) -> dict[str, Any]:
    """A JSON body without the unset fields (pydantic models are dumped as JSON)."""
    return {
        key: value.model_dump(mode="json", exclude_none=True) if isinstance(value, BaseModel) else value
        for key, value in values.items()
        if value is not None
    }


class _Resource:
    def __init__(self, client: Client) -> None:
        self._client = client


# --- members and keys --------------------------------------------------------------------------


class MemberCreated(MemberOut):
    """A new member; ``password`` is the one-time password (None when you chose one)."""

    password: str | None = None


class Members(_Resource):
    def list(self, *, page_size: int = 100) -> Iterator[MemberOut]:
        """Every member of the organization, page by page (lazily)."""
        return self._client._paginate("/members", {}, MemberOut, page_size)

    def get(self, member_id: str) -> MemberOut:
        return self._client._json("GET", f"/members/{member_id}", MemberOut)

    def add(
        self, email: str, *, name: str | None = None, role: str = "annotator", password: str | None = None
    ) -> MemberCreated:
        """Add a member. Unless ``password`` is given, the result carries a one-time password."""
        body = _body(email=email, name=name, role=str(role), password=password)
        return self._client._json("POST", "/members", MemberCreated, json=body, retry=False)

    def update(
        self, member_id: str, *, name: str | None = None, role: str | None = None, disabled: bool | None = None
    ) -> MemberOut:
        body = _body(name=name, role=None if role is None else str(role), disabled=disabled)
        return self._client._json("PATCH", f"/members/{member_id}", MemberOut, json=body)

    def reset_password(self, member_id: str) -> PasswordReset:
        """A new one-time password for the member (``.password``, shown only here); their sessions end."""
        return self._client._json("POST", f"/members/{member_id}/password-reset", PasswordReset, retry=False)


class Keys(_Resource):
    def list(self, *, page_size: int = 100) -> Iterator[ApiKeyOut]:
        """Your keys (owners and admins: every key of the organization)."""
        return self._client._paginate("/keys", {}, ApiKeyOut, page_size)

    def create(self, name: str = "api key", *, member_id: str | None = None) -> ApiKeyCreated:
        """A new API key; ``.key`` is the secret, shown only in this result."""
        body = _body(name=name, member_id=member_id)
        return self._client._json("POST", "/keys", ApiKeyCreated, json=body, retry=False)

    def revoke(self, key_id: str) -> ApiKeyOut:
        return self._client._json("DELETE", f"/keys/{key_id}", ApiKeyOut)


class Organizations(_Resource):
    def create(self, name: str) -> OrganizationCreated:
        """Found another organization (owners only) and become its owner, with the same email and
        password. ``.api_key.key`` is a key for it, shown only here: this client's key stays in yours."""
        return self._client._json("POST", "/organizations", OrganizationCreated, json={"name": name}, retry=False)


# --- projects and batches ----------------------------------------------------------------------


class Projects(_Resource):
    def create(
        self,
        name: str,
        spec: Mapping[str, Any] | BaseModel,
        *,
        description: str | None = None,
        instructions: str | None = None,
        overlap: int | None = None,
        quality: Mapping[str, Any] | None = None,
        lease_seconds: int | None = None,
    ) -> ProjectOut:
        """Create a project from a spec (fields + questions); ``overlap`` is answers per task."""
        if overlap is not None:
            quality = {**(quality or {}), "overlap": overlap}
        body = _body(
            name=name,
            spec=spec,
            description=description,
            instructions=instructions,
            quality=quality,
            lease_seconds=lease_seconds,
        )
        return self._client._json("POST", "/projects", ProjectOut, json=body, retry=False)

    def get(self, project_id: str) -> ProjectOut:
        return self._client._json("GET", f"/projects/{project_id}", ProjectOut)

    def list(self, *, include_archived: bool = False, page_size: int = 100) -> Iterator[ProjectOut]:
        params = _params(include_archived=include_archived or None)
        return self._client._paginate("/projects", params, ProjectOut, page_size)

    def update(
        self,
        project_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        instructions: str | None = None,
        overlap: int | None = None,
        quality: Mapping[str, Any] | None = None,
        lease_seconds: int | None = None,
        archived: bool | None = None,
        spec: Mapping[str, Any] | None = None,
    ) -> ProjectOut:
        """Change what is given; the rest stays. ``quality`` is the whole new policy; a new ``spec`` is
        checked against the project's stored work (a ``ConflictError`` names what it forbids)."""
        if overlap is not None:
            quality = {**(quality or {}), "overlap": overlap}
        body = _body(
            name=name,
            description=description,
            instructions=instructions,
            quality=quality,
            lease_seconds=lease_seconds,
            archived=archived,
            spec=dict(spec) if spec is not None else None,
        )
        return self._client._json("PATCH", f"/projects/{project_id}", ProjectOut, json=body)

    def check_spec(
        self, spec: Mapping[str, Any], *, quality: Mapping[str, Any] | None = None, project_id: str | None = None
    ) -> SpecChecked:
        """Check a spec (and a quality policy) without saving anything: the spec and policy as they
        would be stored, or the ``InvalidInputError`` creating a project would raise, naming the field.
        With ``project_id``, also check it as a change of that project (a ``ConflictError`` names what
        its stored work forbids, e.g. removing a question that has answers)."""
        body = _body(spec=dict(spec), quality=dict(quality) if quality is not None else None, project_id=project_id)
        return self._client._json("POST", "/specs/validate", SpecChecked, json=body)

    def delete(self, project_id: str) -> None:
        """Delete a project that has no task (a 409 ``project_has_tasks`` otherwise: archive it with
        ``update(project_id, archived=True)``, or :meth:`delete_with_data`)."""
        self._client._request("DELETE", f"/projects/{project_id}")

    def delete_with_data(self, project_id: str, confirm: str) -> JobOut:
        """Delete a project with everything stored about it, for good (owners and admins): it is
        archived at once and a ``project.delete`` job deletes the rest (follow it with
        ``client.jobs.wait``). ``confirm`` repeats the project's name."""
        return self._client._json(
            "POST", f"/projects/{project_id}/deletion", JobOut, json={"confirm": confirm}, retry=False
        )

    def agreement(self, project_id: str, batch_id: str | None = None) -> AgreementOut:
        """Agreement per question (percent, Fleiss' and Cohen's kappa, Krippendorff's alpha); managers and above."""
        return self._client._json(
            "GET", f"/projects/{project_id}/agreement", AgreementOut, params=_params(batch_id=batch_id)
        )

    def dashboard(
        self,
        project_id: str,
        *,
        interval: Literal["hour", "day"] = "hour",
        workers_cursor: str | None = None,
        workers_limit: int | None = None,
    ) -> DashboardOut:
        """The dashboard's figures (progress, throughput, judgments, confidence, agreement, a page of
        workers, cost) in one call; managers and above."""
        params = _params(interval=interval, workers_cursor=workers_cursor, workers_limit=workers_limit)
        return self._client._json("GET", f"/projects/{project_id}/dashboard", DashboardOut, params=params)

    def workers(self, project_id: str, batch_id: str | None = None, *, page_size: int = 100) -> Iterator[WorkerFigures]:
        """Figures of each worker who answered in the project (or batch), page by page; managers and above."""
        params = _params(batch_id=batch_id)
        return self._client._paginate(f"/projects/{project_id}/workers", params, WorkerFigures, page_size)

    def quality_models(self, project_id: str) -> list[QualityModelOut]:
        """The project's fitted worker models (one per question, option or criterion): version, method,
        when and on what it was fitted, how its confidence is calibrated; managers and above."""
        return self._client._json("GET", f"/projects/{project_id}/quality-models", QualityModelsOut).items

    def refit(self, project_id: str) -> JobOut:
        """Refit the project's worker models as a background job (follow it with ``client.jobs.wait``)."""
        return self._client._json("POST", f"/projects/{project_id}/refit", JobOut)

    def gold(self, project_id: str, *, page_size: int = 100) -> Iterator[GoldOut]:
        """The project's gold tasks with their answers (``.gold``), page after page; managers and above."""
        return self._client._paginate(f"/projects/{project_id}/gold", {}, GoldOut, page_size)

    def import_gold(self, project_id: str, csv_file: PathLike | bytes) -> GoldImportReport:
        """Mark tasks gold from a CSV (a path, or the CSV itself as bytes): all lines or none.

        Layout: a ``task_id`` or ``unique_id`` column, then one column per question; a ``labels``
        answer is a JSON list in its cell. A bad line raises :class:`InvalidInputError` naming it.
        """
        content = csv_file if isinstance(csv_file, bytes) else Path(csv_file).read_bytes()
        return self._client._json(
            "POST",
            f"/projects/{project_id}/gold",
            GoldImportReport,
            content=content,
            headers={"Content-Type": "text/csv"},
            retry=True,  # marking the same answers again changes nothing
        )

    def reinstate_worker(self, project_id: str, worker_id: str) -> WorkerStanding:
        """Let a worker paused by gold take tasks again (their gold record restarts); managers and above."""
        return self._client._json(
            "POST", f"/projects/{project_id}/workers/{worker_id}/reinstate", WorkerStanding, retry=True
        )


class Batches(_Resource):
    def create(self, project_id: str, name: str, *, metadata: Mapping[str, Any] | None = None) -> BatchOut:
        """An open batch: its tasks wait (staged) until :meth:`finalize`."""
        body = _body(name=name, metadata=dict(metadata) if metadata is not None else None)
        return self._client._json("POST", f"/projects/{project_id}/batches", BatchOut, json=body, retry=False)

    def get(self, batch_id: str) -> BatchOut:
        return self._client._json("GET", f"/batches/{batch_id}", BatchOut)

    def list(self, project_id: str, *, page_size: int = 100) -> Iterator[BatchOut]:
        return self._client._paginate(f"/projects/{project_id}/batches", {}, BatchOut, page_size)

    def finalize(self, batch_id: str) -> BatchOut:
        """Open -> finalized: the batch's tasks join the queue (repeating it is harmless)."""
        return self._client._json("POST", f"/batches/{batch_id}/finalize", BatchOut, retry=True)

    def cancel(self, batch_id: str) -> BatchOut:
        return self._client._json("POST", f"/batches/{batch_id}/cancel", BatchOut, retry=True)

    def pause(self, batch_id: str) -> BatchOut:
        """Finalized -> paused: its waiting tasks leave the queue (staged) until :meth:`resume`."""
        return self._client._json("POST", f"/batches/{batch_id}/pause", BatchOut, retry=True)

    def resume(self, batch_id: str) -> BatchOut:
        """Paused -> finalized: its tasks join the queue again."""
        return self._client._json("POST", f"/batches/{batch_id}/resume", BatchOut, retry=True)


# --- tasks -------------------------------------------------------------------------------------

TaskSource = PathLike | Iterable[Mapping[str, Any] | BaseModel]


class Tasks(_Resource):
    def create(
        self,
        project_id: str,
        data: Mapping[str, Any],
        *,
        unique_id: str | None = None,
        priority: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        batch_id: str | None = None,
        overlap: int | None = None,
    ) -> TaskCreated:
        """Create one task. With a ``unique_id`` it is idempotent (``.created`` is False on a repeat)."""
        body = _body(
            data=dict(data),
            unique_id=unique_id,
            priority=priority,
            metadata=dict(metadata) if metadata is not None else None,
            batch_id=batch_id,
            overlap=overlap,
        )
        return self._client._json(
            "POST", f"/projects/{project_id}/tasks", TaskCreated, json=body, retry=unique_id is not None
        )

    def import_tasks(
        self,
        project_id: str,
        tasks: TaskSource,
        *,
        batch_id: str | None = None,
        on_error: Literal["reject", "skip"] = "reject",
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Create many tasks and return the report (how many were created, existed, were bad).

        ``tasks``: an iterable of task dicts (``{"data": {...}, "unique_id": ..., ...}``) or models,
        sent as one streamed JSONL request (a million tasks are never in memory at once); or a path
        to a file in any import format (``.jsonl``, ``.json``, ``.csv``, ``.parquet``, a ``.zip`` or
        folder of images), which is uploaded and imported by a job (:meth:`Imports.start`), waited
        for here. ``on_error="reject"`` stores nothing if any line is invalid and raises
        :class:`ImportRejectedError` (its ``report`` names the lines); ``"skip"`` stores the valid
        ones. ``progress``, for a file, is called with the number of bytes sent so far.
        """
        if isinstance(tasks, str | os.PathLike):
            imports = self._client.imports
            job = imports.start(project_id, tasks, batch_id=batch_id, on_error=on_error, progress=progress)
            return imports.wait(job.id)
        response = self._client._request(
            "POST",
            f"/projects/{project_id}/tasks/bulk",
            params=_params(batch_id=batch_id, on_error=on_error),
            content=_jsonl_chunks(tasks),
            headers={"Content-Type": "application/x-ndjson"},
            timeout=self._client._long_timeout(),
            retry=False,
        )
        return ImportReport.model_validate(response.json())

    def get(self, task_id: str) -> TaskOut:
        return self._client._json("GET", f"/tasks/{task_id}", TaskOut)

    def list(
        self,
        project_id: str | None = None,
        *,
        batch_id: str | None = None,
        status: str | None = None,
        unique_id: str | None = None,
        created_after: Any = None,
        created_before: Any = None,
        updated_after: Any = None,
        updated_before: Any = None,
        completed_after: Any = None,
        completed_before: Any = None,
        metadata: Mapping[str, Any] | None = None,
        min_confidence: float | None = None,
        review_status: str | None = None,
        page_size: int = 100,
        max_confidence: float | None = None,
        worker_id: str | None = None,
        gold: bool | None = None,
        unreviewed: bool = False,
        search: str | None = None,
        sort: str = "created",
    ) -> Iterator[TaskOut]:
        """Tasks oldest first, filtered; ``metadata={"k": "v"}`` matches metadata values. Lazy pages.

        The task browser's filters: ``max_confidence``, ``worker_id`` (tasks that worker answered),
        ``gold``, ``unreviewed``, ``search`` (words that must all appear in the data); ``sort``:
        created, updated, confidence, priority, or ``-`` before one for descending."""
        params = _params(
            project_id=project_id,
            batch_id=batch_id,
            status=status,
            unique_id=unique_id,
            created_after=created_after,
            created_before=created_before,
            updated_after=updated_after,
            updated_before=updated_before,
            completed_after=completed_after,
            completed_before=completed_before,
            min_confidence=min_confidence,
            review_status=review_status,
            max_confidence=max_confidence,
            worker_id=worker_id,
            gold=gold,
            unreviewed=unreviewed or None,
            search=search,
            sort=None if sort == "created" else sort,
        )
        for key, value in (metadata or {}).items():
            params[f"metadata.{key}"] = value if isinstance(value, str) else orjson.dumps(value).decode()
        return self._client._paginate("/tasks", params, TaskOut, page_size)

    def cancel(self, task_id: str) -> TaskOut:
        return self._client._json("POST", f"/tasks/{task_id}/cancel", TaskOut, retry=True)

    def bulk(
        self,
        project_id: str,
        action: str,
        *,
        ids: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        priority: int | None = None,
        dry_run: bool = False,
    ) -> TaskBulkResult:
        """One action (cancel, requeue, set_priority, promote_gold) on the project's tasks named by
        ``ids`` or matching ``filter`` (the ``GET /tasks`` filters as a dict); returns the counts."""
        body: dict[str, Any] = {"action": action, "dry_run": dry_run}
        if ids is not None:
            body["ids"] = list(ids)
        if filter is not None:
            body["filter"] = dict(filter)
        if priority is not None:
            body["priority"] = priority
        return self._client._json(
            "POST", f"/projects/{project_id}/tasks/actions", TaskBulkResult, json=body, retry=False
        )

    def mark_gold(self, task_id: str, answer: Mapping[str, Any]) -> GoldOut:
        """Make the task gold with this known answer (or replace its answer); managers and above."""
        return self._client._json("PUT", f"/tasks/{task_id}/gold", GoldOut, json={"answer": dict(answer)})

    def unmark_gold(self, task_id: str) -> GoldOut:
        """Make a gold task ordinary again (completed from its answers if it has enough, else queued)."""
        return self._client._json("DELETE", f"/tasks/{task_id}/gold", GoldOut)

    def responses(self, task_id: str) -> list[ResponseOut]:
        """Every response to the task, oldest first."""
        rows = self._client._request("GET", f"/tasks/{task_id}/responses").json()
        return [ResponseOut.model_validate(row) for row in rows]

    def history(self, task_id: str) -> list[HistoryStep]:
        """Every step of the task in time order: leases, responses, completion, refits, reviews."""
        rows = self._client._request("GET", f"/tasks/{task_id}/history").json()
        return [HistoryStep.model_validate(row) for row in rows]

    def predictions(self, task_id: str) -> list[PredictionOut]:
        """The task's predictions (model, answer and score per question), oldest first."""
        rows = self._client._request("GET", f"/tasks/{task_id}/predictions").json()
        return [PredictionOut.model_validate(row) for row in rows]


def _prediction_chunks(
    predictions: Iterable[Mapping[str, Any]], size: int
) -> Iterator[tuple[list[int], list[dict[str, Any]]]]:
    """Predictions grouped by task, in requests of about ``size``: (original indexes, predictions)."""
    groups: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
    for index, item in enumerate(predictions):
        key = ("id", item.get("task_id")) if item.get("task_id") is not None else ("uid", item.get("unique_id"))
        groups.setdefault(key, []).append((index, dict(item)))
    indexes: list[int] = []
    chunk: list[dict[str, Any]] = []
    for group in groups.values():
        if chunk and len(chunk) + len(group) > size:
            yield indexes, chunk
            indexes, chunk = [], []
        indexes += [index for index, _ in group]
        chunk += [item for _, item in group]
    if chunk:
        yield indexes, chunk


def _shift_prediction_errors(exc: InvalidInputError, offset: list[int]) -> None:
    """A refused request's errors, renumbered from the first prediction passed to the upload."""
    for error in (exc.details or {}).get("errors", []):
        if isinstance(error.get("index"), int) and error["index"] < len(offset):
            error["index"] = offset[error["index"]]


def _sum_reports(total: PredictionReport, part: PredictionReport, offset: list[int]) -> PredictionReport:
    errors = [e.model_copy(update={"index": offset[e.index]}) for e in part.errors]
    return total.model_copy(
        update={
            "worker_id": total.worker_id or part.worker_id,
            **{name: getattr(total, name) + getattr(part, name) for name in _REPORT_COUNTS},
            "errors": (total.errors + errors)[:100],
        }
    )


_REPORT_COUNTS = ("received", "stored", "responses_created", "unchanged", "invalid")


def _jsonl_chunks(tasks: Iterable[Mapping[str, Any] | BaseModel]) -> Iterator[bytes]:
    """Serialise tasks one by one into ~256 KB chunks of JSONL."""
    buffer: list[bytes] = []
    size = 0
    for task in tasks:
        line = task.model_dump_json(exclude_none=True).encode() if isinstance(task, BaseModel) else orjson.dumps(task)
        buffer.append(line)
        size += len(line) + 1
        if size >= _IMPORT_CHUNK_BYTES:
            yield b"\n".join(buffer) + b"\n"
            buffer, size = [], 0
    if buffer:
        yield b"\n".join(buffer) + b"\n"


def _raw_chunks(path: Path, progress: Callable[[int], None] | None) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(_IMPORT_CHUNK_BYTES):
            yield block
            if progress:
                progress(handle.tell())


# --- the queue ---------------------------------------------------------------------------------


class Queue(_Resource):
    def next_task(self, project_id: str) -> AssignmentOut | None:
        """Lease the next task of the project to you, or None when nothing is waiting for you."""
        response = self._client._request("POST", f"/projects/{project_id}/next", retry=False)
        if response.status_code == 204:
            return None
        return AssignmentOut.model_validate(response.json())

    def submit(
        self,
        task_id: str,
        answer: Mapping[str, Any],
        *,
        assignment_id: str | None = None,
        idempotency_key: str | None = None,
        duration_ms: int | None = None,
        prefill: Mapping[str, str] | None = None,
    ) -> SubmitResult:
        """Answer a task. An ``Idempotency-Key`` (a fresh uuid4 unless you pass one) makes retries safe.

        ``prefill``: per question, the ``response_id`` of the lease's prediction the answer started
        from; the server records whether it was kept (docs/models.md).
        """
        key = idempotency_key or str(uuid.uuid4())
        body = _body(
            answer=dict(answer),
            assignment_id=assignment_id,
            duration_ms=duration_ms,
            prefill=dict(prefill) if prefill is not None else None,
        )
        return self._client._json(
            "POST", f"/tasks/{task_id}/responses", SubmitResult, json=body, headers={"Idempotency-Key": key}, retry=True
        )

    def skip(self, assignment_id: str) -> AssignmentOut:
        """You won't answer it: the task goes to someone else, never back to you."""
        return self._client._json("POST", f"/assignments/{assignment_id}/skip", AssignmentOut, retry=False)

    def release(self, assignment_id: str) -> AssignmentOut:
        """Give the task back to the queue unanswered (you may get it again)."""
        return self._client._json("POST", f"/assignments/{assignment_id}/release", AssignmentOut, retry=False)

    def list(self, project_id: str, *, page_size: int = 100) -> Iterator[QueueTaskOut]:
        """The tasks still short of workers, in the order the queue serves them (priority, then queue
        rank, then oldest), whichever worker asks; readers and above. Fetched a page at a time."""
        return self._client._paginate(f"/projects/{project_id}/queue", {}, QueueTaskOut, page_size)

    def rerank(self, project_id: str) -> JobOut:
        """Re-rank the project's queue now (the policy's ``ordering``), as a ``queue.rerank`` job;
        follow it with ``client.jobs.wait``. Managers and above."""
        return self._client._json("POST", f"/projects/{project_id}/queue/rerank", JobOut)

    def iter_tasks(self, project_id: str) -> Iterator[AssignmentOut]:
        """Lease tasks one after another until the queue has nothing left for you.

        Answer (or skip/release) each before asking for the next, or its lease stays open.
        """
        while (assignment := self.next_task(project_id)) is not None:
            yield assignment


# --- review ------------------------------------------------------------------------------------


class Reviews(_Resource):
    """The review queue and verdicts (reviewers and above; never on a task you answered)."""

    def next(self, project_id: str) -> ReviewItem | None:
        """Claim the next task waiting for review, with its responses; None when none is left for you."""
        response = self._client._request("POST", f"/projects/{project_id}/reviews/next", retry=False)
        if response.status_code == 204:
            return None
        return ReviewItem.model_validate(response.json())

    def accept(self, task_id: str, *, reason: str | None = None) -> ReviewResult:
        return self._verdict(task_id, _body(verdict="accept", reason=reason))

    def reject(self, task_id: str, reason: str) -> ReviewResult:
        """The result is wrong: the task goes back to the queue for more judgments."""
        return self._verdict(task_id, _body(verdict="reject", reason=reason))

    def fix(self, task_id: str, answer: Mapping[str, Any], *, reason: str | None = None) -> ReviewResult:
        """Replace the result's answer with yours (stored as your response; it outranks the crowd)."""
        return self._verdict(task_id, _body(verdict="fix", answer=dict(answer), reason=reason))

    def skip(self, task_id: str) -> TaskOut:
        """Give the task back to the review queue for another reviewer (it never comes back to you)."""
        return self._client._json("POST", f"/tasks/{task_id}/reviews/skip", TaskOut, retry=False)

    def list(self, task_id: str) -> list[ReviewOut]:
        """The task's reviews, oldest first."""
        rows = self._client._request("GET", f"/tasks/{task_id}/reviews").json()
        return [ReviewOut.model_validate(row) for row in rows]

    def _verdict(self, task_id: str, body: dict[str, Any]) -> ReviewResult:
        return self._client._json("POST", f"/tasks/{task_id}/reviews", ReviewResult, json=body, retry=False)


class Workers(_Resource):
    """The organization's workers: call it to list them; :meth:`stats` for one worker's figures."""

    def __call__(self, *, page_size: int = 100) -> Iterator[WorkerOut]:
        """Every worker of the organization (people and models), page by page."""
        return self._client._paginate("/workers", {}, WorkerOut, page_size)

    def stats(self, worker_id: str, project_id: str, *, batch_id: str | None = None) -> WorkerStats:
        """One worker's figures on a project: anyone's for managers and above, one's own for every member."""
        params = _params(project_id=project_id, batch_id=batch_id)
        return self._client._json("GET", f"/workers/{worker_id}/stats", WorkerStats, params=params)


# --- jobs --------------------------------------------------------------------------------------

JOB_FINISHED = frozenset({"succeeded", "failed", "canceled"})


class Jobs(_Resource):
    """Background jobs (refits, exports, webhook deliveries): follow their progress, cancel them."""

    def list(self, *, kind: str | None = None, status: str | None = None, page_size: int = 100) -> Iterator[JobOut]:
        """The organization's jobs, newest first (managers and up; others see the jobs they started)."""
        return self._client._paginate("/jobs", _params(kind=kind, status=status), JobOut, page_size)

    def get(self, job_id: str) -> JobOut:
        return self._client._json("GET", f"/jobs/{job_id}", JobOut)

    def cancel(self, job_id: str) -> JobOut:
        """Cancel a queued or running job (repeating it is harmless; a finished job raises ConflictError)."""
        return self._client._json("POST", f"/jobs/{job_id}/cancel", JobOut, retry=True)

    def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        *,
        poll: float = 0.5,
        progress: Callable[[JobOut], None] | None = None,
    ) -> JobOut:
        """Poll the job until it has succeeded, failed or been canceled, and return it.

        ``timeout``: seconds to wait at most (None: no limit), then :class:`TimeoutError`.
        ``progress`` is called with the job after each poll (e.g. to update a progress bar).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if progress is not None:
                progress(job)
            if job.status in JOB_FINISHED:
                return job
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout:g} s")
            time.sleep(poll if left is None else min(poll, left))


# --- imports -----------------------------------------------------------------------------------

IMPORT_FORMATS = ("jsonl", "json", "csv", "parquet", "label-studio", "images", "urls")


class Imports(_Resource):
    """File imports run as jobs: upload a file of tasks (any format), follow the job, read its report."""

    def start(
        self,
        project_id: str,
        path: PathLike,
        *,
        format: str | None = None,
        on_error: Literal["reject", "skip"] = "reject",
        batch_id: str | None = None,
        field: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> JobOut:
        """Upload ``path`` (streamed) and return the queued ``import`` job.

        ``format``: one of :data:`IMPORT_FORMATS`; by default the file's extension says
        (``label-studio`` must be named). A folder is sent as a zip of its images (``images``).
        ``field``: for images, the spec's image field (default: its only one). ``progress`` is
        called with the bytes sent so far.
        """
        source = Path(path)
        with _import_file(source) as (upload, name):
            fmt = format or ("images" if source.is_dir() else None)
            response = self._client._request(
                "POST",
                f"/projects/{project_id}/imports",
                params=_params(filename=name, format=fmt, on_error=on_error, batch_id=batch_id, field=field),
                content=_raw_chunks(upload, progress),
                headers={"Content-Type": "application/octet-stream"},
                timeout=self._client._long_timeout(),
                retry=False,
            )
        return JobOut.model_validate(response.json())

    def wait(
        self, job_id: str, timeout: float | None = None, *, progress: Callable[[JobOut], None] | None = None
    ) -> ImportReport:
        """Wait for the import job to end and return its report.

        Raises :class:`ImportRejectedError` when it stored nothing because of bad lines (``report``
        names them), failed for another reason, or was canceled (``job`` is the job).
        """
        job = self._client.jobs.wait(job_id, timeout, progress=progress)
        report = ImportReport.model_validate(job.result) if isinstance(job.result, dict) else None
        if job.status == "succeeded" and report is not None:
            return report
        message = job.error or f"the import job {job.id} was {job.status}"
        raise ImportRejectedError(message, report=report, job=job, code=str(job.status))


@contextmanager
def _import_file(source: Path) -> Iterator[tuple[Path, str]]:
    """The file to upload for ``source``, with its name: the file itself, or a folder zipped (stored,
    not compressed: images are compressed already) into a temporary file deleted afterwards."""
    if not source.is_dir():
        yield source, source.name
        return
    handle, name = tempfile.mkstemp(prefix="truthset-import-", suffix=".zip")
    os.close(handle)
    archive_path = Path(name)
    try:
        with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_STORED) as archive:
            for file in sorted(source.rglob("*")):
                if file.is_file() and not file.is_symlink():  # a link could point anywhere on this machine
                    archive.write(file, file.relative_to(source).as_posix())
        yield archive_path, f"{source.name or 'images'}.zip"
    finally:
        archive_path.unlink(missing_ok=True)


# --- webhooks ----------------------------------------------------------------------------------


class Webhooks(_Resource):
    """Webhook subscriptions and their deliveries (managers and up; see docs/webhooks.md)."""

    def create(
        self,
        url: str,
        events: Iterable[str],
        *,
        project_id: str | None = None,
        description: str | None = None,
        active: bool | None = None,
    ) -> WebhookCreated:
        """Subscribe ``url`` to ``events``; ``.secret`` (to verify signatures) is in this result only."""
        body = _body(url=url, events=list(events), project_id=project_id, description=description, active=active)
        return self._client._json("POST", "/webhooks", WebhookCreated, json=body, retry=False)

    def list(self, *, project_id: str | None = None, page_size: int = 100) -> Iterator[WebhookOut]:
        return self._client._paginate("/webhooks", _params(project_id=project_id), WebhookOut, page_size)

    def get(self, webhook_id: str) -> WebhookOut:
        return self._client._json("GET", f"/webhooks/{webhook_id}", WebhookOut)

    def update(
        self,
        webhook_id: str,
        *,
        url: str | None = None,
        events: Iterable[str] | None = None,
        description: str | None = None,
        active: bool | None = None,
    ) -> WebhookOut:
        body = _body(url=url, events=None if events is None else list(events), description=description, active=active)
        return self._client._json("PATCH", f"/webhooks/{webhook_id}", WebhookOut, json=body)

    def delete(self, webhook_id: str) -> None:
        """Delete the webhook with its deliveries."""
        self._client._request("DELETE", f"/webhooks/{webhook_id}")

    def rotate_secret(self, webhook_id: str) -> WebhookCreated:
        """A new signing secret (in this result only); the old one stops at once."""
        return self._client._json("POST", f"/webhooks/{webhook_id}/rotate-secret", WebhookCreated, retry=False)

    def deliveries(
        self, webhook_id: str, *, status: str | None = None, event: str | None = None, page_size: int = 100
    ) -> Iterator[WebhookDeliveryOut]:
        """The webhook's deliveries, newest first."""
        params = _params(status=status, event=event)
        return self._client._paginate(f"/webhooks/{webhook_id}/deliveries", params, WebhookDeliveryOut, page_size)

    def delivery(self, delivery_id: str) -> WebhookDeliveryDetail:
        """One delivery, with every attempt in ``history``."""
        return self._client._json("GET", f"/webhook-deliveries/{delivery_id}", WebhookDeliveryDetail)

    def replay(self, delivery_id: str) -> WebhookDeliveryOut:
        """Send a delivered or failed delivery again (same id and body); a pending one raises ConflictError."""
        return self._client._json("POST", f"/webhook-deliveries/{delivery_id}/replay", WebhookDeliveryOut, retry=True)


# --- the built-in model ------------------------------------------------------------------------


class Models(_Resource):
    """The built-in text model of a project: train a version (a ``model.train`` job), list the versions."""

    def train(self, project_id: str, question: str) -> JobOut:
        """Queue training for a text ``label``/``labels`` question (managers and up); follow the job with
        ``client.jobs.wait``: its ``result.status`` is ``trained``, ``unchanged`` or ``not_enough_data``."""
        return self._client._json("POST", f"/projects/{project_id}/models", JobOut, json={"question": question})

    def list(self, project_id: str, *, page_size: int = 100) -> Iterator[ProjectModelOut]:
        """The project's trained versions with their metrics, newest first (managers and up)."""
        return self._client._paginate(f"/projects/{project_id}/models", {}, ProjectModelOut, page_size)
