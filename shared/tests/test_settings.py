from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from switchboard_shared.settings import DEV_INTERNAL_TOKEN, Environment, ServiceSettings


class ChatSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHAT_", env_file=".env", extra="ignore", populate_by_name=True
    )
    service_name = "chat"


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_file=".env", extra="ignore", populate_by_name=True
    )
    service_name = "gateway"


def test_service_prefix_and_fleet_wide_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_PORT", "9101")
    monkeypatch.setenv("SWITCHBOARD_RETRIEVAL_URL", "http://retrieval.internal:8002")
    monkeypatch.setenv("GATEWAY_PORT", "9100")
    settings = ChatSettings()
    assert settings.port == 9101
    assert settings.retrieval_url == "http://retrieval.internal:8002"
    assert GatewaySettings().port == 9100


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CHAT_PORT=9200\nSWITCHBOARD_LOG_LEVEL=DEBUG\n")
    monkeypatch.chdir(tmp_path)
    settings = ChatSettings()
    assert settings.port == 9200
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize("environment", ["test", "production"])
def test_default_secret_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    monkeypatch.setenv("SWITCHBOARD_ENVIRONMENT", environment)
    with pytest.raises(ValidationError, match="internal_token"):
        ChatSettings()
    monkeypatch.setenv("SWITCHBOARD_INTERNAL_TOKEN", "a-real-long-random-secret")
    assert ChatSettings().environment == Environment(environment)


def test_development_default_is_allowed() -> None:
    settings = ChatSettings()
    assert settings.internal_token == DEV_INTERNAL_TOKEN
    assert settings.effective_database_url().startswith("sqlite+aiosqlite:///")
