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
    # Imports: the largest file accepted over the API (bytes); the CLI streams files of any size.
    import_max_bytes: int = 256 * 1024 * 1024
    # Agency codes of test systems (e.g. "vxp.") accepted beside the official shape; comma-separated.
    agency_test_code_prefixes: str = ""
    token_ttl_days: int = 365

    # Security: the audit chain's MAC key and checkpoint signing key are derived from TSLCD_AUDIT_KEY (or, when
    # it is empty, from TSLCD_SECRET_KEY); neither is stored in the database. NATS (JetStream) carries events and
    # the audit checkpoints to an outside witness when set, e.g. nats://127.0.0.1:4222.
    audit_key: str = ""
    nats_url: str = ""
    # Failed logins: this many per username (or per client address) within the window lock it out, first for
    # login_lockout_s seconds, doubling with each further lock-out up to a day.
    login_max_failures: int = 5
    login_max_failures_per_address: int = 20
    login_window_s: int = 900
    login_lockout_s: int = 60

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
        if self.environment != "development" and self.audit_key == DEV_SECRET:
            raise ValueError("TSLCD_AUDIT_KEY must not be the development default outside development")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
