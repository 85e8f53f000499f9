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

    # Telemetry: how long measurements are kept (at least this long: whole days of rates, whole months of
    # roll-ups are removed at once), default utilization thresholds, capacity forecasts and /metrics.
    rates_retention_days: int = 7
    rollup_5m_retention_days: int = 90
    rollup_1h_retention_days: int = 730
    rollup_1d_retention_days: int = 3650
    utilization_warning_pct: float = 60.0
    utilization_critical_pct: float = 80.0
    forecast_min_days: int = 14  # fewer days of data: "not enough data"
    metrics_enabled: bool = True  # /metrics without a token; the server binds to loopback by default

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
