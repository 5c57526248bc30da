"""Every setting is documented where integrators look: `.env.example` and the README table."""

from __future__ import annotations

from pathlib import Path

import pytest

from vapi_calendar.server.config import Settings

ROOT = Path(__file__).resolve().parent.parent.parent
SETTINGS = sorted(name.upper() for name in Settings.model_fields)


@pytest.mark.parametrize("name", SETTINGS)
def test_setting_is_in_env_example(name: str) -> None:
    assert f"{name}=" in (ROOT / ".env.example").read_text()


@pytest.mark.parametrize("name", SETTINGS)
def test_setting_is_in_readme_configuration_table(name: str) -> None:
    assert f"| `{name}` |" in (ROOT / "README.md").read_text()
