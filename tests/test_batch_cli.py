"""`recommender tag` and `recommender recommend-batch` as users run them: real processes, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, write_rows

from models import TAGGER_DIR
from recommender.cli import main
from recommender.tagging import Tagger

TESTS = Path(__file__).resolve().parent
# The real CLI with HashEmbedder in place of the model: each encode call's size is appended to
# $CALLS_LOG, and the call numbered $HANG_ON_CALL never returns (so the test can kill the process
# mid-run at a known point).
FAKE_MODEL_CLI = f"""
import os, sys, time
sys.path.insert(0, {str(TESTS)!r})
from conftest import HashEmbedder
import recommender.embeddings

class Fake(HashEmbedder):
    calls = 0

    def encode(self, texts, **options):
        Fake.calls += 1
        if Fake.calls == int(os.environ.get("HANG_ON_CALL", "0")):
            time.sleep(3600)
        with open(os.environ["CALLS_LOG"], "a") as log:
            log.write(f"{{len(texts)}}\\n")
        return super().encode(texts, **options)

recommender.embeddings.load_embedder = lambda spec: Fake()
import recommender.engine
recommender.engine.load_embedder = recommender.embeddings.load_embedder
from recommender.cli import main
main(prog_name="recommender")
"""


@pytest.fixture
def fake_cli(tmp_path: Path) -> Path:
    script = tmp_path / "fake_model_cli.py"
    script.write_text(FAKE_MODEL_CLI, encoding="utf-8")
    return script


def run_fake(script: Path, *args: str, calls_log: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CALLS_LOG": str(calls_log), **env},
        cwd=script.parent,
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_tag_end_to_end_with_the_shipped_model(tmp_path: Path, batch_assets: list[dict]) -> None:
    write_rows(tmp_path / "assets.jsonl", batch_assets[1:11:2])  # without segments and stages: predicted

    done = subprocess.run(
        [str(Path(sys.executable).parent / "recommender"), "tag", "assets.jsonl", "tagged.jsonl"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == "tag: read 5 records, wrote 5, skipped 0 invalid; output tagged.jsonl\n"
    assert "progress: 5/5 assets (100%)" in done.stderr  # not a terminal: plain progress lines
    rows = read_jsonl(tmp_path / "tagged.jsonl")
    version = Tagger.load(TAGGER_DIR).version
    assert [row["id"] for row in rows] == [row["id"] for row in batch_assets[1:11:2]]
    assert all(row["model_version"] == version and row["segments"] and row["stages"] for row in rows)


def test_a_killed_run_leaves_no_output_and_resume_finishes_it_without_redoing_batches(
    tmp_path: Path, fake_cli: Path, batch_assets: list[dict], batch_tagger: Path
) -> None:
    write_rows(tmp_path / "assets.jsonl", batch_assets[:100])
    args = ["tag", "assets.jsonl", "--model", "fake", "--tagger", str(batch_tagger), "--batch-size", "10"]
    whole = run_fake(fake_cli, *args[:2], "whole.jsonl", *args[2:], calls_log=tmp_path / "whole.log")
    assert whole.returncode == 0, whole.stderr
    process = subprocess.Popen(
        [sys.executable, str(fake_cli), *args[:2], "out.jsonl", *args[2:]],
        env={**os.environ, "CALLS_LOG": str(tmp_path / "killed.log"), "HANG_ON_CALL": "4"},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = tmp_path / "out.jsonl.partial.state"
    deadline = time.monotonic() + 60
    while not (state.exists() and json.loads(state.read_text())["batches"] == 3):
        assert process.poll() is None and time.monotonic() < deadline, "the run did not reach its fourth batch"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()

    assert not (tmp_path / "out.jsonl").exists()
    assert len((tmp_path / "out.jsonl.partial").read_text(encoding="utf-8").splitlines()) == 30

    resumed = run_fake(fake_cli, *args[:2], "out.jsonl", *args[2:], "--resume", calls_log=tmp_path / "resumed.log")

    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == (
        "tag: read 100 records, wrote 100, skipped 0 invalid, resumed after record 30; output out.jsonl\n"
    )
    assert (tmp_path / "out.jsonl").read_bytes() == (tmp_path / "whole.jsonl").read_bytes()
    whole_calls = (tmp_path / "whole.log").read_text().split()
    assert (tmp_path / "resumed.log").read_text().split() == whole_calls[3:]


def test_recommend_batch_end_to_end(
    tmp_path: Path, fake_cli: Path, batch_contacts: list[dict], batch_index: Path
) -> None:
    write_rows(tmp_path / "contacts.csv", [*batch_contacts[:20], {"contact_id": "bad", "segment": "midmarket"}])

    done = run_fake(
        fake_cli,
        "recommend-batch",
        "contacts.csv",
        "next.parquet",
        "--index-dir",
        str(batch_index),
        "-k",
        "4",
        "--skip-invalid",
        calls_log=tmp_path / "calls.log",
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == "recommend-batch: read 21 records, wrote 20, skipped 1 invalid; output next.parquet\n"
    assert "skipped: contacts.csv, line 22, field segment: 'midmarket' is not one of enterprise, smb\n" in done.stderr
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "next.parquet").to_pylist()
    assert [row["contact_id"] for row in rows] == [c["contact_id"] for c in batch_contacts[:20]]
    assert all(1 <= len(row["asset_ids"]) <= 4 for row in rows)


def test_recommend_batch_with_steps_writes_a_nurture_sequence_per_contact(
    tmp_path: Path, fake_cli: Path, batch_contacts: list[dict], batch_index: Path
) -> None:
    contacts = [{k: v for k, v in contact.items() if k != "k"} for contact in batch_contacts[:10]]
    write_rows(tmp_path / "contacts.csv", contacts)

    done = run_fake(
        fake_cli,
        "recommend-batch",
        "contacts.csv",
        "next.jsonl",
        "--index-dir",
        str(batch_index),
        "--steps",
        "3",
        calls_log=tmp_path / "calls.log",
    )

    assert done.returncode == 0, done.stderr
    rows = read_jsonl(tmp_path / "next.jsonl")
    assert [row["contact_id"] for row in rows] == [c["contact_id"] for c in contacts]
    stages = ["awareness", "consideration", "decision", "retention"]
    for row in rows:
        assert len(row["asset_ids"]) == len(set(row["asset_ids"])) == 3
        steps = [stages.index(item["stage"]) for item in row["items"]]
        assert steps == sorted(steps) and steps[0] == stages.index(row["stage"])


def test_recommend_batch_reads_contacts_saved_in_the_encoding_given(
    tmp_path: Path, fake_cli: Path, batch_contacts: list[dict], batch_index: Path
) -> None:
    contacts = [contact | {"query": "Rechnungspr\u00fcfung f\u00fcr M\u00fcnchen"} for contact in batch_contacts[:5]]
    path = write_rows(tmp_path / "contacts.csv", contacts)
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252"))  # as Excel on Western Windows saves it
    args = ["recommend-batch", "contacts.csv", "next.jsonl", "--index-dir", str(batch_index)]

    refused = run_fake(fake_cli, *args, calls_log=tmp_path / "calls.log")
    done = run_fake(fake_cli, *args, "--encoding", "cp1252", calls_log=tmp_path / "calls.log")

    assert refused.returncode == 1
    assert (
        "line 2: is not UTF-8 text; save the file as UTF-8, or give its encoding (--encoding cp1252)" in refused.stderr
    )
    assert done.returncode == 0, done.stderr
    assert [row["contact_id"] for row in read_jsonl(tmp_path / "next.jsonl")] == [c["contact_id"] for c in contacts]


def test_bad_records_fail_the_command_with_every_problem_and_no_output(
    tmp_path: Path, fake_cli: Path, batch_contacts: list[dict], batch_index: Path
) -> None:
    write_rows(tmp_path / "contacts.jsonl", [{"contact_id": "a", "segment": "smb", "signals": ["fax"]}, {"k": 3}])

    done = run_fake(
        fake_cli,
        "recommend-batch",
        "contacts.jsonl",
        "next.jsonl",
        "--index-dir",
        str(batch_index),
        calls_log=tmp_path / "calls.log",
    )

    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert (
        lines[0] == "Error: Found 2 invalid record(s) in contacts.jsonl. Fix them, or pass --skip-invalid to skip them:"
    )
    assert lines[1].startswith("  contacts.jsonl, line 1, field signals: unknown buying signal 'fax'; known signals")
    assert lines[2:] == [
        "  contacts.jsonl, line 2, field contact_id: required but missing or empty",
        "  contacts.jsonl, line 2, field segment: required but missing or empty",
    ]
    assert not (tmp_path / "next.jsonl").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tag", "in.jsonl", "out.txt"], "Error: cannot tell the output format of 'out.txt' from its extension"),
        (["tag", "missing.jsonl", "out.jsonl"], "Error: No such file or folder: 'missing.jsonl'."),
        (["tag", "in.jsonl", "out.jsonl", "--engine", "spark", "--resume"], "Error: --resume is for the local engine"),
        (["recommend-batch", "in.jsonl", "out.csv", "--ship-index"], "Error: --ship-index is for --engine spark"),
        (["recommend-batch", "in.jsonl", "out.csv", "--steps", "3", "-k", "5"], "Error: -k is for lists"),
        (["recommend-batch", "in.jsonl", "out.csv", "--steps", "13"], "Invalid value for '--steps'"),
        (["tag", "in.jsonl", "out.jsonl", "--encoding", "utf-16"], "Encoding 'utf-16' is not supported"),
    ],
)
def test_wrong_arguments_fail_before_any_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text("", encoding="utf-8")

    result = CliRunner().invoke(main, args)

    assert result.exit_code in (1, 2)
    assert message in result.output


def test_every_batch_command_has_help_with_an_example() -> None:
    for command in ("tag", "recommend-batch"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0
        assert "Example: recommender " + command in result.output


@pytest.mark.slow
def test_recommend_batch_end_to_end_with_the_shipped_model(tmp_path: Path, batch_contacts: list[dict]) -> None:
    recommender = str(Path(sys.executable).parent / "recommender")
    library = REPO / "content_library" / "sample" / "ledgerly.jsonl"
    built = subprocess.run(
        [recommender, "build-index", str(library), "--index-dir", "index"], capture_output=True, cwd=tmp_path
    )
    assert built.returncode == 0, built.stderr
    write_rows(tmp_path / "contacts.jsonl", batch_contacts[:10])

    done = subprocess.run(
        [recommender, "recommend-batch", "contacts.jsonl", "next.csv", "--index-dir", "index"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == "recommend-batch: read 10 records, wrote 10, skipped 0 invalid; output next.csv\n"
    lines = (tmp_path / "next.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "contact_id,stage,stage_source,asset_ids,scores,items,index_version"
    assert len(lines) == 11


def test_tag_on_spark_end_to_end_matches_the_local_engine_with_the_venv_off_the_path(
    tmp_path: Path, batch_assets: list[dict]
) -> None:
    recommender = str(Path(sys.executable).parent / "recommender")
    write_rows(tmp_path / "assets.jsonl", batch_assets[:6])
    # As CI and cron run it: the virtual environment is not on PATH, yet Spark's local workers need it.
    env = {key: value for key, value in os.environ.items() if key not in ("PYSPARK_PYTHON", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/bin:/bin"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [recommender, "tag", "assets.jsonl", *args],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
            env=env,
        )

    on_spark = run("tagged", "--format", "jsonl", "--engine", "spark", "--master", "local[1]")
    local = run("tagged.jsonl")

    assert on_spark.returncode == 0, on_spark.stderr[-3000:]
    assert local.returncode == 0, local.stderr[-3000:]
    assert on_spark.stdout.startswith("tag: read 6 records, wrote 6, skipped 0 invalid")
    parts = sorted((tmp_path / "tagged").glob("part-*"))
    spark_rows = [json.loads(line) for part in parts for line in part.read_text(encoding="utf-8").splitlines()]
    local_rows = read_jsonl(tmp_path / "tagged.jsonl")
    labels = ("id", "segments", "stages", "roles", "language", "model_version")
    assert [{key: row[key] for key in labels} for row in spark_rows] == [
        {key: row[key] for key in labels} for row in local_rows
    ]
