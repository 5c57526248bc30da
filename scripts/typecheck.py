"""Type-check the `vapi_calendar` package with mypy, as it is laid out when installed.

The repository keeps each sub-package in its own top-level folder (`server/`, `tools/`, …) and
setuptools maps them under `vapi_calendar` (pyproject's `package-dir`). An editable install
resolves that with an import hook, which mypy cannot follow, so this builds the installed
layout from symlinks in `.typecheck/` (read from the same `package-dir` table) and checks it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / ".typecheck"


def main() -> int:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dir: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(TREE, ignore_errors=True)
    namespace = TREE / "vapi_calendar"
    namespace.mkdir(parents=True)
    for package, folder in package_dir.items():
        name = package.removeprefix("vapi_calendar.")
        (namespace / name).symlink_to(ROOT / folder, target_is_directory=True)
    env = {**os.environ, "MYPYPATH": str(TREE)}
    command = [sys.executable, "-m", "mypy", "-p", "vapi_calendar", *sys.argv[1:]]
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode  # noqa: S603


if __name__ == "__main__":
    sys.exit(main())
