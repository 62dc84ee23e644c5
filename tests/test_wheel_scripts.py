"""scripts/_venv.sh: the demo installs Dispatch without the test tools, the tests with them, and
each reinstalls only when it needs more or the packaging changed. A stand-in `python` in a
temporary venv folder records the pip calls (installing for real is what scripts/demo.sh from a
fresh clone does, and takes a minute of downloads)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fake_venv(tmp_path: Path) -> tuple[Path, Path]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "pip.log"
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n', encoding="utf-8")
    python.chmod(0o755)
    return venv, log


def _source(venv: Path, extras: str | None, script: str = "_venv.sh") -> None:
    env = {k: v for k, v in os.environ.items() if k != "EXTRAS"}
    env["DISPATCH_VENV"] = str(venv)
    prefix = f"EXTRAS={extras}; " if extras is not None else ""
    subprocess.run(
        ["bash", "-c", f'{prefix}source "{ROOT / "scripts" / script}"'],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _installs(log: Path) -> list[str]:
    if not log.exists():
        return []
    return [line.split(" -e ", 1)[1] for line in log.read_text().splitlines() if " -e " in line]


def test_the_demo_installs_without_dev_extras_and_the_tests_add_them(tmp_path: Path) -> None:
    venv, log = _fake_venv(tmp_path)
    _source(venv, None)  # what scripts/demo.sh does
    assert _installs(log) == [str(ROOT)]
    assert (venv / ".dispatch-installed").read_text() == ""
    _source(venv, None)
    assert len(_installs(log)) == 1  # installed already: nothing to do
    _source(venv, "dev")  # what scripts/test.sh does
    assert _installs(log)[-1] == f"{ROOT}[dev]"
    assert (venv / ".dispatch-installed").read_text() == "dev"
    _source(venv, None)  # the demo is content with a venv that has more
    _source(venv, "dev")
    assert len(_installs(log)) == 2


def test_test_sh_asks_for_the_dev_extras() -> None:
    text = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert "EXTRAS=dev" in text.split("_venv.sh")[0]
    assert "EXTRAS" not in (ROOT / "scripts" / "demo.sh").read_text(encoding="utf-8")
