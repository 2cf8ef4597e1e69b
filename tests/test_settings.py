"""One configuration: every LEGEND_* variable the code reads is in the settings table, documented in README, parsed
strictly, and command-line overrides never leak into os.environ."""
import os
import re
from pathlib import Path

import pytest

from legend_demo.core import settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_variable_the_code_reads_is_a_documented_setting():
    used = set()
    for path in list((ROOT / "legend_demo").rglob("*.py")) + [ROOT / "app.py"]:
        used |= set(re.findall(r"LEGEND_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    assert used <= set(settings.SETTINGS), sorted(used - set(settings.SETTINGS))
    readme = (ROOT / "README.md").read_text()
    assert settings.markdown_table() in readme
    assert not re.search(r"os\.environ(\.get)?\(?\[?[\"']LEGEND_", "".join(
        p.read_text() for p in (ROOT / "legend_demo").rglob("*.py") if p.name != "settings.py"))


def test_values_are_parsed_strictly_and_name_the_variable(monkeypatch):
    monkeypatch.setenv("LEGEND_QWEN_TIMEOUT_S", "soon")
    with pytest.raises(ValueError, match="LEGEND_QWEN_TIMEOUT_S='soon' is not a number"):
        settings.get("LEGEND_QWEN_TIMEOUT_S")
    monkeypatch.setenv("LEGEND_QWEN_MAX_PIXELS", "inf")
    with pytest.raises(ValueError, match="LEGEND_QWEN_MAX_PIXELS"):
        settings.get("LEGEND_QWEN_MAX_PIXELS")
    monkeypatch.setenv("LEGEND_ENABLE_TEST_ENGINE", "yes")
    with pytest.raises(ValueError, match="must be 0 or 1"):
        settings.get("LEGEND_ENABLE_TEST_ENGINE")
    monkeypatch.delenv("LEGEND_QWEN_TIMEOUT_S")
    assert settings.get("LEGEND_QWEN_TIMEOUT_S") == 60.0  # the default
    with pytest.raises(ValueError, match="unknown setting"):
        settings.get("LEGEND_NOPE")


def test_overrides_win_and_stay_out_of_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LEGEND_ENGINE", "embedded")
    settings.override(LEGEND_ENGINE="tiny-random", LEGEND_CHECKPOINTS=str(tmp_path))
    try:
        assert settings.get("LEGEND_ENGINE") == "tiny-random" and settings.get("LEGEND_CHECKPOINTS") == tmp_path
        assert os.environ["LEGEND_ENGINE"] == "embedded" and os.environ.get("LEGEND_CHECKPOINTS") != str(tmp_path)
        from legend_demo.engines.registry import default_engine_name

        assert default_engine_name() == "tiny-random"  # the CLI and the API follow LEGEND_ENGINE like the app
    finally:
        settings.clear_overrides()
    with pytest.raises(ValueError, match="LEGEND_MAX_UPLOAD_MB"):
        settings.override(LEGEND_MAX_UPLOAD_MB="-1")
