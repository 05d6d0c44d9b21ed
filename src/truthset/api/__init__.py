"""The REST API: ``create_app(settings)`` builds the ASGI app. Routes parse, call a service, return a schema."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp

from truthset import __version__, jobs, questions
from truthset.api import deps, docs, errors, openapi, session
from truthset.api.headers import SecurityHeadersMiddleware
from truthset.api.limits import AnonymousGuardMiddleware, BodyLimitMiddleware, NulGuardMiddleware
from truthset.api.memory import GiveBackMemoryMiddleware
from truthset.api.routes import accounts, exports, gold, media, projects, quality, queue, reviews, tasks
from truthset.api.routes import dashboard as dashboard_routes
from truthset.api.routes import imports as import_routes
from truthset.api.routes import jobs as job_routes
from truthset.api.routes import llm_labels as llm_label_routes
from truthset.api.routes import model_servers as model_server_routes
from truthset.api.routes import models as model_routes
from truthset.api.routes import predictions as prediction_routes
from truthset.api.routes import webhooks as webhook_routes
from truthset.config import Settings, get_settings
from truthset.errors import TruthsetError
from truthset.storage import Database

API_PREFIX = "/api/v1"
log = logging.getLogger("truthset.api")

__all__ = ["API_PREFIX", "create_app"]


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> FastAPI:
    """Build the app in named steps: state, routes, errors, the OpenAPI document, limits."""
    settings = settings or get_settings()
    app = _App(
        title="truthset",
        version=__version__,
        description="Self-hosted data engine for AI training data.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by api/docs.py from vendored files, under a strict policy
        redoc_url=None,
        lifespan=_lifespan(owns_db=db is None),
    )
    _setup_state(app, settings, db)
    _setup_routes(app)
    errors.install(app)
    openapi.install(app, page_size_max=settings.page_size_max)
    _setup_limits(app, settings)
    return app


class _App(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outermost, outside Starlette's own 500 handler too: every response carries the headers.
        return SecurityHeadersMiddleware(super().build_middleware_stack())


def _lifespan(*, owns_db: bool) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(_warm_up, app)  # also starts the thread pool the routes use
        # Everything alive now (modules, the app, SQLAlchemy and pydantic metadata) lives as long as
        # the process: freezing it keeps the cyclic garbage collector from re-scanning it on every
        # full collection, which cost a fifth of the annotation loop's CPU and its worst latencies.
        gc.collect()
        gc.freeze()
        runner = _start_job_runner(app)
        yield
        if runner is not None:  # in-flight handlers stop at their next check; their jobs are queued again
            await anyio.to_thread.run_sync(runner.stop, app.state.settings.shutdown_timeout_seconds)
        if owns_db:
            app.state.db.dispose()  # stops the SQLite writer thread after the last request

    return lifespan


def _start_job_runner(app: FastAPI) -> jobs.Runner | None:
    """The in-process job runner (``TRUTHSET_JOBS_IN_PROCESS``): the embedded set-up needs no
    ``truthset worker``. Production runs workers and turns it off (see docs/jobs.md)."""
    settings: Settings = app.state.settings
    if not settings.jobs_in_process:
        return None
    runner = jobs.runner_for(app.state.db, settings)
    runner.start()
    app.state.job_runner = runner
    return runner


def _warm_up(app: FastAPI) -> None:
    """Build before the first request what it would otherwise build while a client waits.

    The first single-task create after a start took 0.5-2 s: compiling the project's spec loads
    the question types' entry points, and ``label`` imports ``quality``, which imports SciPy.
    """
    questions.names()  # imports every question type, built-in or plugin
    try:
        with app.state.db.read() as conn:  # opens the first pooled connection (on SQLite: the WAL)
            conn.exec_driver_sql("SELECT 1")
    except (SQLAlchemyError, TruthsetError) as exc:  # a warm-up only: requests report the database's state
        log.warning("could not open a database connection at start-up: %s", exc)


def _setup_state(app: FastAPI, settings: Settings, db: Database | None) -> None:
    app.state.settings = settings
    app.state.query_parameters = {}  # the query parameters each route takes (see deps.known_query_only)
    app.state.db = db or Database(
        settings.resolved_database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        lock_timeout=settings.lock_timeout_seconds,
    )


def _setup_routes(app: FastAPI) -> None:
    # The router tries routes in order: the annotation loop's come first, since they are most of the traffic.
    # Every API route refuses query parameters it does not take (a misspelt filter is not ignored).
    strict_query = [Depends(deps.known_query_only)]
    for module in (
        queue,
        tasks,
        projects,
        accounts,
        media,
        quality,
        dashboard_routes,
        gold,
        reviews,
        job_routes,
        exports,
        import_routes,
        webhook_routes,
        prediction_routes,
        llm_label_routes,
        model_routes,
        model_server_routes,
    ):
        app.include_router(module.router, prefix=API_PREFIX, dependencies=strict_query)
    app.include_router(docs.router, prefix=API_PREFIX)  # public: no key, no query parameters
    __import__("truthset.ui", fromlist=["install"]).install(app)  # the web UI (imported late: ui sits below api)
    __import__("truthset.compat.scale", fromlist=["install"]).install(app)  # /scale/v1 (compat sits below api)

    @app.get("/healthz", tags=["meta"], operation_id="health", include_in_schema=True)
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}


def _setup_limits(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=settings.max_body_bytes,
        large_limit=max(settings.max_import_bytes, settings.max_upload_bytes),
        large_suffixes=("/tasks/bulk", "/media"),
        own_limits=(("/imports", settings.max_import_file_bytes),),
    )
    app.add_middleware(NulGuardMiddleware)
    app.add_middleware(GiveBackMemoryMiddleware, suffixes=("/tasks/bulk", "/export", "/media"))
    public = (f"{API_PREFIX}/openapi.json", f"{API_PREFIX}/docs")
    app.add_middleware(AnonymousGuardMiddleware, prefix=f"{API_PREFIX}/", public=public, session_cookie=session.COOKIE)
    __import__("truthset.compat.scale", fromlist=["install"]).install_error_shape(app)  # wraps the guards above
