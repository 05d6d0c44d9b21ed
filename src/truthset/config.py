"""Settings, read from the environment (prefix ``TRUTHSET_``) or passed explicitly.

Nothing is built at import time: call :func:`get_settings` (or construct :class:`Settings`) where needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
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
    max_task_bytes: int = Field(1024 * 1024, ge=256, description="Largest single task payload.")
    page_size_max: int = Field(1000, ge=1, description="Largest page a list endpoint returns.")
    shutdown_timeout_seconds: float = Field(
        10.0, ge=0, description="On SIGTERM, how long `truthset serve` lets requests in flight finish."
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'truthset.db').resolve()}"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides taking precedence."""
    return Settings(**overrides)  # type: ignore[arg-type]
