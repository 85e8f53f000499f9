"""Settings read from TSLCD_* environment variables."""

from functools import lru_cache
from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TSLCD_", env_file=".env", extra="ignore")

    environment: str = "development"
    var_dir: Path = Path("var")
    database_url: str = ""
    # Encrypts SNMP credentials at rest; production must set its own.
    secret_key: str = DEV_SECRET
    page_size_max: int = 1000
    token_ttl_days: int = 365

    @model_validator(mode="after")
    def _defaults(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'tslcd.db'}"
        if self.environment != "development" and self.secret_key == DEV_SECRET:
            raise ValueError("TSLCD_SECRET_KEY must be set outside development")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
