"""Settings: defaults, user file, environment and flag overrides, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import build_parser, settings_from_args
from bot.settings import SettingsError, load_settings

pytestmark = pytest.mark.unit


def test_defaults_come_from_default_toml() -> None:
    s = load_settings(environ={})
    assert (s.server.host, s.server.port) == ("127.0.0.1", 8080)
    assert s.analyzers.enabled == ["face_emotion", "voice_emotion"]
    assert s.analyzers.face_emotion.fps == 15.0
    assert s.analyzers.face_emotion.model == "mini_xception"
    assert s.storage.database_path.name == "meetmood.sqlite3"


def test_every_default_setting_has_a_comment() -> None:
    text = (Path(__file__).parent.parent / "config" / "default.toml").read_text()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#"):
            assert lines[i - 1].lstrip().startswith("#"), f"no comment above: {line}"


def test_layers_override_in_order(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text("[server]\nport = 9000\nhost = '0.0.0.0'\n[analyzers.face_emotion]\nfps = 1\n")
    s = load_settings(user, environ={"MEETMOOD_SERVER__PORT": "9100"})
    assert s.server.port == 9100  # environment beats the file
    assert s.server.host == "0.0.0.0"  # from the file
    assert s.analyzers.face_emotion.fps == 1.0
    s = load_settings(
        user, environ={"MEETMOOD_SERVER__PORT": "9100"}, overrides={"server.port": 9200}
    )
    assert s.server.port == 9200  # flags beat everything
    env = {"MEETMOOD_WEBRTC__ICE_ADDRESSES": '["127.0.0.1"]'}
    assert load_settings(environ=env).webrtc.ice_addresses == ["127.0.0.1"]


def test_cli_flags(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--port",
            "7000",
            "--database",
            str(tmp_path / "x.db"),
            "--set",
            "analyzers.face_emotion.fps=0.5",
        ]
    )
    s = settings_from_args(args)
    assert s.server.port == 7000
    assert s.storage.database_path == tmp_path / "x.db"
    assert s.analyzers.face_emotion.fps == 0.5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"server.port": 70000}, "server.port: Input should be less than or equal to 65535"),
        ({"server.prot": 1}, "server.prot: unknown setting"),
        (
            {"analyzers.enabled": ["nope"]},
            "analyzers.enabled: unknown analyzer 'nope'",
        ),
        ({"analyzers.face_emotion.fps": 0}, "analyzers.face_emotion.fps: Input should be greater"),
        ({"analyzers.face_emotion.device": "tpu"}, "analyzers.face_emotion.device"),
        ({"server.public_url": "example.org"}, "server.public_url: must start with"),
    ],
)
def test_errors_name_the_key(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as e:
        load_settings(environ={}, overrides=overrides)
    assert message in str(e.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "missing.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\nport=1")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(bad, environ={})


def test_cli_reports_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    assert main(["serve", "--set", "server.port=abc"]) == 2
    assert "server.port" in capsys.readouterr().err
