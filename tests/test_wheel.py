"""An installed wheel works on its own: templates, sample data and migrations travel inside it,
and `dispatch demo` runs from a folder that has nothing to do with this checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

pytestmark = pytest.mark.slow  # builds a wheel (pip fetches setuptools from the index)

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "setup.py", "README.md", "src", "templates", "subscribers/example.csv"]


def _copy_sources(target: Path) -> Path:
    """The checkout's packaging inputs (as they are now, committed or not), so that building
    leaves no build/ or egg-info behind in the shared work tree."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    target.mkdir(parents=True)
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:  # noqa: ANN003
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)


def test_an_editable_install_reads_the_top_level_templates_folder_as_package_data() -> None:
    from importlib import resources

    from dispatch.config import default_templates_dir

    folder = resources.files("dispatch.templates")  # fails: reinstall (pip install -e .)
    assert Path(str(folder)) == ROOT / "templates" == default_templates_dir()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built the way a user builds it: pip (its setuptools comes from the package index)."""
    work = tmp_path_factory.mktemp("wheel")
    source = _copy_sources(work / "source")
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(work / "dist"),
            str(source),
        ]
    )
    if built.returncode != 0:
        if "Could not find a version" in built.stderr or "Network" in built.stderr:
            skip_or_fail(
                f"pip could not fetch setuptools to build the wheel: {built.stderr[-300:]}"
            )
        pytest.fail(f"building the wheel failed:\n{built.stdout}\n{built.stderr}")
    (found,) = (work / "dist").glob("dispatch_newsletter-*.whl")
    return found


def test_the_wheel_carries_templates_sample_data_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "templates").rglob("*"):
        if template.is_file() and "__pycache__" not in template.parts:
            assert f"dispatch/templates/{template.relative_to(ROOT / 'templates')}" in names
    assert "dispatch/templates/web/base.html" in names
    assert any(n.startswith("dispatch/store/migrations/0001_") for n in names)
    assert any(n.startswith("dispatch/sample/site/") for n in names)
    assert "dispatch/sample/subscribers.csv" in names  # the demo's list, and no other list
    for lang in ("en", "es", "de", "fr", "ar"):  # compiled catalogs (issue 14), and their source
        assert f"dispatch/locale/{lang}/LC_MESSAGES/dispatch.mo" in names
        assert f"dispatch/locale/{lang}/LC_MESSAGES/dispatch.po" in names
    assert not any(n.startswith("subscribers/") for n in names)
    assert not any(n.startswith("templates/") for n in names)  # no stray top-level package


@pytest.mark.slow
def test_demo_runs_from_an_installed_wheel_in_an_unrelated_folder(
    wheel: Path, tmp_path: Path
) -> None:
    # A fresh venv holding only the wheel. Its dependencies are this venv's (a .pth line adds
    # its site-packages after the new one's, and a .pth reached that way is not run, so this
    # checkout's editable install stays out); installing them from the index again is slow.
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    new_site = Path(
        sysconfig.get_path("purelib", vars={"base": str(target), "platbase": str(target)})
    )
    own_site = Path(sysconfig.get_path("purelib"))
    (new_site / "_dispatch_test_deps.pth").write_text(f"{own_site}\n", encoding="utf-8")
    python = target / "bin" / "python"
    installed = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            str(wheel),
        ]
    )
    assert installed.returncode == 0, installed.stderr

    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = _run(
        [str(python), "-c", "import dispatch; print(dispatch.__file__)"], cwd=elsewhere, env=env
    )
    assert where.stdout.startswith(str(new_site)), where.stdout + where.stderr

    demo = _run(
        [
            str(target / "bin" / "dispatch"),
            "--no-dotenv",
            "demo",
            "--workdir",
            str(tmp_path / "demo"),
        ],
        cwd=elsewhere,
        env=env,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Traceback" not in demo.stderr
    assert list(elsewhere.iterdir()) == []  # nothing written where it was run
