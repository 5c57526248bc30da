"""The wheel installs one import package, `vapi_calendar`, and nothing else at the top level.

The repository keeps its layers in top-level folders (`server/`, `tools/`, …); pyproject maps each
under `vapi_calendar`. A folder added without a mapping, or a package left out of the list,
would silently be missing from the wheel, so both are checked here, and the wheel is installed
into a clean virtual environment to see exactly what lands in site-packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
PACKAGE_DIR: dict[str, str] = CONFIG["package-dir"]


def _source_packages() -> set[str]:
    """Every folder holding Python code under a mapped folder, as its installed name."""
    found = set()
    for package, folder in PACKAGE_DIR.items():
        base = ROOT / folder
        for source in base.rglob("*.py"):
            if "__pycache__" in source.parts:
                continue
            relative = source.parent.relative_to(base)
            found.add(".".join([package, *relative.parts]))
    return found


def test_every_code_folder_is_a_listed_package_with_an_init() -> None:
    packages = set(CONFIG["packages"])
    assert _source_packages() == packages
    for package in packages:
        mapped = next(p for p in PACKAGE_DIR if package == p or package.startswith(p + "."))
        folder = ROOT / PACKAGE_DIR[mapped] / Path(*package[len(mapped) + 1 :].split(".") or [])
        assert (folder / "__init__.py").is_file(), package


def test_nothing_is_mapped_outside_the_one_namespace() -> None:
    assert all(name.startswith("vapi_calendar.") for name in PACKAGE_DIR)
    assert all(name.startswith("vapi_calendar.") for name in CONFIG["packages"])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of exactly what the Docker context holds, so setuptools' in-tree build
    # directory never lands in (or leaks stale files into) the repository.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in set(PACKAGE_DIR.values()):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
        check=True,
        timeout=600,
    )
    (built,) = out.glob("vapi_calendar-*.whl")
    return built


def test_the_wheel_holds_one_top_level_package_with_every_module_and_template(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"vapi_calendar"}
    for package, folder in PACKAGE_DIR.items():
        for source in (ROOT / folder).rglob("*"):
            if source.suffix in (".py", ".html") and "__pycache__" not in source.parts:
                inner = source.relative_to(ROOT / folder).as_posix()
                assert f"{package.replace('.', '/')}/{inner}" in names, inner


def test_installing_adds_exactly_one_import_package(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "clean"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    before = set(os.listdir(site))
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=300,
    )
    gained = set(os.listdir(site)) - before
    assert {g for g in gained if not g.endswith(".dist-info")} == {"vapi_calendar"}
    assert len(gained) == 2

    # The dependencies come from the test environment (a path entry, whose own .pth files and
    # so the development install's import hook are not processed): what runs is the wheel.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [python, "-c", "import vapi_calendar.server.cli as c; print(c.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=env,
    ).stdout
    assert where.startswith(str(site)), where
    for command in (
        [str(target / "bin" / "vapi-calendar"), "--help"],
        [str(python), "-m", "vapi_calendar.server", "--help"],
    ):
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, cwd=tmp_path, env=env
        )
        assert done.returncode == 0, done.stderr
        assert "serve" in done.stdout
