"""What `pip install` ships: every module of the four packages and the data files the code reads."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("recommender", "content_library", "models", "api")
#: Files read at run time, relative to the project root.
DATA = (
    "recommender/data/*.toml",
    "content_library/data/*.toml",
    "content_library/sample/*.jsonl",
    "content_library/devset/*.jsonl",
    "models/tagger/*",
    "api/static/*",
    "api/templates/*",
)


def test_the_wheel_holds_every_module_and_the_data_files_the_code_reads(tmp_path: Path):
    # Built from a copy: a build writes build/ and egg-info beside the sources it reads.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr

    (wheel,) = tmp_path.glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(source).as_posix() for package in PACKAGES for p in (source / package).rglob("*.py")}
    data = {p.relative_to(source).as_posix() for pattern in DATA for p in source.glob(pattern) if p.is_file()}
    assert {"recommender/cli/__init__.py", "api/routes/__init__.py", "models/tagger/tagger.npz"} <= modules | data
    assert sorted((modules | data) - shipped) == []
