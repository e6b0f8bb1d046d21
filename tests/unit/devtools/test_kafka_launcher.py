"""The Kafka launcher finds its jars in this checkout or in $WINWIN_KAFKA_HOME, and says
clearly what to do when they are nowhere (no broker is started here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.devtools.kafka_launcher import KafkaUnavailable, check_available, kafka_home


def test_the_checkout_folder_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WINWIN_KAFKA_HOME", raising=False)
    repo = Path(__file__).resolve().parents[3]
    assert kafka_home() == repo / "deploy" / "kafka"


def test_the_env_var_names_another_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WINWIN_KAFKA_HOME", str(tmp_path))
    assert kafka_home() == tmp_path


def test_no_jars_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WINWIN_KAFKA_HOME", str(tmp_path))
    with pytest.raises(KafkaUnavailable) as caught:
        check_available()
    message = str(caught.value)
    assert str(tmp_path / "lib") in message
    assert "make kafka-jars" in message and "WINWIN_KAFKA_HOME" in message


def test_jars_without_the_config_template_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "kafka_2.13-4.0.0.jar").touch()
    monkeypatch.setenv("WINWIN_KAFKA_HOME", str(tmp_path))
    with pytest.raises(KafkaUnavailable, match="server.properties"):
        check_available()
