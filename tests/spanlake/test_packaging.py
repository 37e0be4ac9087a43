"""The repository stands on its own: a fresh clone with nothing beside it collects and runs the tests,
nothing points outside the repository, and ``pip install .`` installs one top-level package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.paths import FIXTURES, REPO

# Tests that read upstream fixtures from several folders; run in the clone, they prove the files are
# there (collection alone proves only what is read at import time).
_FIXTURE_READERS = ["tests/collector/formats/test_otlp.py", "tests/collector/formats/test_jaeger_thrift.py",
                    "tests/query/formats/test_otlp.py", "tests/collector/test_zipkin_http.py"]


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_a_fresh_clone_with_nothing_beside_it_collects_and_reads_its_fixtures(tmp_path: Path) -> None:
    assert (REPO / ".git").exists(), "this test needs the git checkout it clones"
    clone = tmp_path / "clone"
    _git("clone", "--quiet", "--no-hardlinks", str(REPO), str(clone), cwd=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clone"]  # no shared/ or anything beside it
    env_cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    collected = subprocess.run([*env_cmd, "--collect-only"], cwd=clone, capture_output=True, text=True,
                               timeout=600)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    assert " error" not in collected.stdout.splitlines()[-1]
    ran = subprocess.run([*env_cmd, *_FIXTURE_READERS], cwd=clone, capture_output=True, text=True,
                         timeout=600)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]


def test_nothing_in_the_repository_points_outside_it() -> None:
    patterns = ["../" + "shared", "reference/" + "jaeger.md", "shared/" + "fixtures"]  # split: no self-match
    grep = subprocess.run(["git", "grep", "-n", "-I", *(x for p in patterns for x in ("-e", p)), "--", ".",
                           ":!tests/fixtures"], cwd=REPO, capture_output=True, text=True)
    assert grep.returncode == 1 and grep.stdout == "", grep.stdout  # 1: git grep found nothing


def test_every_fixture_folder_is_described_in_the_fixtures_readme() -> None:
    readme = (FIXTURES / "README.md").read_text()
    assert (FIXTURES / "LICENSE-APACHE-2.0").exists()
    for folder in [*FIXTURES.iterdir(), *(FIXTURES / "jaeger").iterdir()]:
        if folder.is_dir() and folder.name != "jaeger":
            assert f"`{folder.relative_to(FIXTURES)}/" in readme, folder


def test_the_wheel_installs_one_top_level_package_with_the_ui(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path),
                    str(REPO)], check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("spanlake-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"spanlake"}
    for expected in ["spanlake/storage/store.py", "spanlake/collector/formats/otlp.py",
                     "spanlake/query/app.py", "spanlake/ui/static/index.html",
                     "spanlake/collector/formats/proto/collector_pb2.py"]:
        assert expected in names
    assert not any(n.startswith("spanlake/tests") or n.startswith("tests/") for n in names)
