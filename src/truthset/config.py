"""Settings, read from the environment (prefix ``TRUTHSET_``) or passed explicitly.

Nothing is built at import time: call :func:`get_settings` (or construct :class:`Settings`) where needed.
"""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRUTHSET_", extra="ignore")

    data_dir: Path = Field(Path("truthset-data"), description="Directory for the SQLite database and media.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL. Default: SQLite file `truthset.db` inside data_dir."
    )
    host: str = Field("127.0.0.1", description="Address `truthset serve` binds to.")
    port: int = Field(8000, description="Port `truthset serve` listens on.")
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL", description="SQLite `synchronous` pragma; FULL makes every acknowledged write durable."
    )
    default_lease_seconds: int = Field(600, ge=10, description="How long a task lease lasts by default.")
    max_body_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest JSON request body (bulk imports excepted)."
    )
    max_import_bytes: int = Field(
        2 * 1024 * 1024 * 1024, ge=1024, description="Largest bulk task import body (streamed)."
    )
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1024, description="Largest uploaded media file.")
    max_import_file_bytes: int = Field(
        10 * 1024 * 1024 * 1024,
        ge=1024,
        description="Largest file an import job accepts (streamed to `<data_dir>/imports`); for a zip of "
        "images, also the most its images may unpack to (the zip-bomb guard).",
    )
    max_import_entries: int = Field(
        100_000, ge=1, description="Most files a zip of images may hold (the zip-bomb guard's entry count)."
    )
    max_task_bytes: int = Field(1024 * 1024, ge=256, description="Largest single task payload.")
    page_size_max: int = Field(1000, ge=1, description="Largest page a list endpoint returns.")
    trusted_proxies: str = Field(
        "",
        description="Comma-separated IP addresses or CIDR networks of the reverse proxies whose "
        "X-Forwarded-For/-Proto headers `truthset serve` believes. Empty: no proxy headers are trusted.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        proxies = [part.strip() for part in value.split(",") if part.strip()]
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {proxy!r} is not an IP address or CIDR network") from None
        return ",".join(proxies)
    lock_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Longest a request waits for a database write lock before it answers 503 busy with Retry-After.",
    )
    shutdown_timeout_seconds: float = Field(
        10.0, ge=0, description="On SIGTERM, how long `truthset serve` lets requests in flight finish."
    )
    jobs_in_process: bool = Field(
        True,
        description="Run background jobs in a thread of `truthset serve` (production: false, with `truthset worker`).",
    )
    jobs_concurrency: int = Field(1, ge=1, le=64, description="Jobs a runner runs at once (one thread each).")
    jobs_lease_seconds: float = Field(
        60.0, ge=1, le=3600, description="A running job's lease: a runner gone this long has its job resumed."
    )
    jobs_poll_seconds: float = Field(1.0, gt=0, le=60, description="How often an idle runner looks for due jobs.")
    jobs_retry_base_seconds: float = Field(
        10.0, ge=0, description="Delay before a failed job's first retry; doubled for each further one (with jitter)."
    )
    jobs_retry_max_seconds: float = Field(3600.0, ge=0, description="Longest delay between two retries of a job.")
    export_retention_hours: float = Field(
        168.0, gt=0, description="How long an export job's file stays downloadable before it is deleted."
    )

    # --- outbound requests (URL imports, webhooks): services/netguard.py ---
    outbound_allow_private: bool = Field(
        False,
        description="Let URL imports and webhooks reach loopback, private, link-local and other non-public "
        "addresses (on-premises set-ups). Default: refused.",
    )
    outbound_allow: str = Field(
        "",
        description="Comma-separated hosts, IP addresses or CIDR networks that URL imports and webhooks may reach "
        "even though they are not public (e.g. `127.0.0.1,10.1.2.0/24,hooks.internal`).",
    )
    outbound_connect_timeout_seconds: float = Field(5.0, gt=0, le=300, description="Outbound connect time limit.")
    outbound_read_timeout_seconds: float = Field(
        10.0, gt=0, le=600, description="Outbound time limit between two reads."
    )
    outbound_total_timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="Outbound time limit for a whole request, redirects included."
    )
    outbound_max_redirects: int = Field(5, ge=0, le=20, description="Redirects an outbound GET follows (each checked).")
    outbound_max_bytes: int = Field(
        50 * 1024 * 1024, ge=1024, description="Largest body an outbound request reads (a URL image: max_upload_bytes)."
    )
    max_image_pixels: int = Field(
        100_000_000, ge=1, description="Largest image (width x height) a URL import decodes."
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="How long a webhook delivery waits for the receiver's answer."
    )
    webhook_retry_base_seconds: float = Field(
        30.0, ge=0, description="Delay before a failed webhook delivery's first retry; doubled for each further one."
    )
    webhook_retry_max_seconds: float = Field(3600.0, ge=0, description="Longest delay between two delivery attempts.")
    webhook_retry_window_seconds: float = Field(
        86400.0, ge=0, description="A delivery is retried this long after its event (or its replay), then failed."
    )
    webhook_secret_key: str | None = Field(
        None,
        description="Key that encrypts webhook secrets in the database (32 bytes, base64). Default: a key file "
        "`webhook-secret.key` made in data_dir on first use; set it on every server and worker that do not share "
        "data_dir.",
    )

    llm_api_key: SecretStr | None = Field(
        None,
        description="API key sent to the OpenAI-compatible endpoint of an LLM labeling job that gives none "
        "(services/llm_labeling.py); read by the job runner only, never stored.",
    )

    @field_validator("outbound_allow")
    @classmethod
    def _check_outbound_allow(cls, value: str) -> str:
        entries = [part.strip() for part in value.split(",") if part.strip()]
        for entry in entries:
            if "/" in entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"outbound_allow: {entry!r} is not a CIDR network") from None
        return ",".join(entries)

    @field_validator("webhook_secret_key")
    @classmethod
    def _check_webhook_secret_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            key = base64.b64decode(value, validate=True)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ValueError("webhook_secret_key must be 32 bytes in base64 (44 characters)")
        return value

    @property
    def outbound_allow_list(self) -> list[str]:
        return [entry for entry in self.outbound_allow.split(",") if entry]

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'truthset.db').resolve()}"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def imports_dir(self) -> Path:
        return self.data_dir / "imports"


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides taking precedence."""
    return Settings(**overrides)  # type: ignore[arg-type]
