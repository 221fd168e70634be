"""`recommender recommend` and `recommender sequence`: the tables, --json, and one-line errors.

Most tests run the command in-process (CliRunner) over an index built with HashEmbedder, the model
the index names being swapped for it; one runs the installed script with the real model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import HashEmbedder

from content_library import Asset
from recommender.cli import main
from recommender.config import DATA_DIR, StageSignalMap
from recommender.engine import Recommender
from recommender.types import BuyerRequest

KNOWN_SIGNALS = ", ".join(StageSignalMap.from_toml(DATA_DIR / "stage_signals.toml").events)


@pytest.fixture
def hash_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the CLI load HashEmbedder for the index's model name instead of a real model."""
    monkeypatch.setattr("recommender.engine.load_embedder", lambda spec: HashEmbedder(name=spec))


def recommend(index_dir: Path, *args: str | Path):
    return CliRunner().invoke(main, ["recommend", "--index-dir", str(index_dir), *map(str, args)])


def in_process(index_dir: Path, **fields):
    # The CLI ranks with today's date: so does this recommender, for the same freshness.
    return Recommender(index_dir, HashEmbedder()).recommend(BuyerRequest(**fields))


# -- output ------------------------------------------------------------------------------------------------


def test_recommend_prints_the_stage_and_a_ranked_table_with_the_three_largest_reasons(index_dir: Path, hash_model):
    result = recommend(index_dir, "--segment", "enterprise", "--role", "finance", "--signal", "demo", "-k", "3")

    assert result.exit_code == 0, result.output
    expected = in_process(index_dir, segment="enterprise", role="finance", signals=["demo"], k=3)
    lines = ["Stage: decision (signal:demo)"]
    for rank, item in enumerate(expected.items, 1):
        top = sorted(item.reasons.items(), key=lambda kv: -abs(kv[1]))[:3]
        lines.append(
            f"{rank:>3}. {item.score:6.3f}  {item.id:<22} {item.asset.asset_type.value:<14} {item.asset.language}  "
            f"{item.asset.title}"
        )
        lines.append("      " + ", ".join(f"{name} {value:+.2f}" for name, value in top))
    assert result.output.splitlines() == lines


def test_recommend_table_shows_a_given_stage_as_given(index_dir: Path, hash_model):
    result = recommend(index_dir, "--segment", "smb", "--stage", "decision", "--query", "prices per month", "-k", "1")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "Stage: decision (given)"
    assert re.match(
        r"  1\.  *\d+\.\d{3}  smb-dec-1 +pricing +en  plans and prices per month$", result.output.splitlines()[1]
    )


def test_recommend_json_holds_the_stage_its_source_and_every_item_with_its_reasons(index_dir: Path, hash_model):
    result = recommend(
        index_dir,
        "--segment",
        "enterprise",
        "--signal",
        "meeting",
        "--signal",
        "demo",
        "--query",
        "invoice approval",
        "--language",
        "de",
        "--exclude",
        "ent-dec-1",
        "--json",
    )

    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    expected = in_process(
        index_dir,
        segment="enterprise",
        signals=["meeting", "demo"],
        query="invoice approval",
        language="de",
        exclude=["ent-dec-1"],
    )
    assert printed["stage"] == "decision"
    assert printed["stage_source"] == {"kind": "signal", "signal": "demo"}
    assert [item["id"] for item in printed["items"]] == [item.id for item in expected.items]
    assert "ent-dec-1" not in [item["id"] for item in printed["items"]]
    for item, want in zip(printed["items"], expected.items, strict=True):
        assert item["score"] == want.score
        assert item["reasons"] == want.reasons
        assert "body" not in item["asset"]
        assert item["asset"]["title"] == want.asset.title


def test_recommend_filters_by_repeated_asset_types(index_dir: Path, hash_model):
    result = recommend(index_dir, "--segment", "smb", "--asset-type", "review", "--asset-type", "pricing", "--json")

    assert result.exit_code == 0, result.output
    assert sorted(item["id"] for item in json.loads(result.output)["items"]) == ["smb-dec-1", "smb-dec-2"]


def test_recommend_after_the_asset_being_read_never_lists_it(index_dir: Path, hash_model):
    result = recommend(index_dir, "--segment", "enterprise", "--reading", "ent-dec-1", "--json")

    assert result.exit_code == 0, result.output
    listed = [item["id"] for item in json.loads(result.output)["items"]]
    assert listed == [item.id for item in in_process(index_dir, segment="enterprise", reading="ent-dec-1").items]
    assert "ent-dec-1" not in listed


def test_reading_an_asset_not_in_the_index_fails_with_one_line(index_dir: Path, hash_model):
    result = recommend(index_dir, "--segment", "smb", "--reading", "no-such-asset")

    assert result.exit_code == 1
    assert (
        result.output
        == "Error: reading names no asset in the index ('no-such-asset'); give an indexed asset's id or URL\n"
    )


def test_recommend_reads_ranking_overrides_from_config(index_dir: Path, hash_model, tmp_path: Path):
    config = tmp_path / "ranking.toml"
    config.write_text("[weights]\nfreshness = 0.0\n", encoding="utf-8")

    result = recommend(index_dir, "--segment", "smb", "--config", config, "--json")

    assert result.exit_code == 0, result.output
    assert {item["reasons"]["freshness"] for item in json.loads(result.output)["items"]} == {0.0}


# -- errors: one line, exit status 1 -----------------------------------------------------------------------


def test_an_unknown_signal_fails_with_one_line_listing_the_known_signals(index_dir: Path, hash_model):
    result = recommend(index_dir, "--segment", "smb", "--signal", "site_visit", "--signal", "signed")

    assert result.exit_code == 1
    assert result.output == f"Error: unknown buying signal 'signed'; known signals are {KNOWN_SIGNALS}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--language", "xx"], "language: Value error, 'xx' is not a language: write its ISO 639-1 code"),
        (["-k", "0"], "k: Input should be greater than or equal to 1"),
        (["-k", "101"], "k: Input should be less than or equal to 100"),
        (["--asset-type", "hologram"], "asset_types.0: Input should be 'whitepaper', 'case_study'"),
        (
            ["--role", "Intern"],
            "role: 'Intern' is not one of executive, finance, it, procurement, end_user, owner, nor",
        ),
    ],
    ids=["language", "k too small", "k too large", "asset type", "role"],
)
def test_an_invalid_request_fails_with_one_line_naming_the_field(index_dir: Path, hash_model, args, message):
    result = recommend(index_dir, "--segment", "smb", *args)

    assert result.exit_code == 1
    assert result.output.startswith(f"Error: invalid request: {message}")
    assert result.output.count("\n") == 1


def test_a_segment_outside_the_vocabulary_is_a_usage_error_listing_the_segments(index_dir: Path, hash_model):
    result = recommend(index_dir, "--segment", "startup")

    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        "Error: Invalid value for '--segment': 'startup' is not one of 'enterprise', 'smb'."
    )


def test_segment_role_and_stage_may_be_written_in_capitals(index_dir: Path, hash_model):
    written = recommend(index_dir, "--segment", "SMB", "--role", "Owner", "--stage", "Decision", "--json")
    canonical = recommend(index_dir, "--segment", "smb", "--role", "owner", "--stage", "decision", "--json")

    assert written.exit_code == 0, written.output
    assert json.loads(written.output) == json.loads(canonical.output)


def test_a_job_title_is_read_as_the_role_it_names(index_dir: Path, hash_model):
    by_title = recommend(index_dir, "--segment", "enterprise", "--role", "VP Finance", "--json")
    by_role = recommend(index_dir, "--segment", "enterprise", "--role", "finance", "--json")

    assert by_title.exit_code == 0, by_title.output
    assert json.loads(by_title.output) == json.loads(by_role.output)


# -- sequence ----------------------------------------------------------------------------------------------


def sequence(index_dir: Path, *args: str | Path):
    return CliRunner().invoke(main, ["sequence", "--index-dir", str(index_dir), *map(str, args)])


def test_sequence_prints_the_first_stage_and_one_line_per_email_with_its_stage(index_dir: Path, hash_model):
    result = sequence(index_dir, "--segment", "enterprise", "--signal", "meeting", "--steps", "3")

    assert result.exit_code == 0, result.output
    expected = Recommender(index_dir, HashEmbedder()).sequence(
        BuyerRequest(segment="enterprise", signals=["meeting"]), 3
    )
    lines = result.output.splitlines()
    assert lines[0] == "First stage: consideration (signal:meeting)"
    assert [line.split()[:3] for line in lines[1::2]] == [
        [f"{n}.", step.stage.value, f"{step.item.score:.3f}"] for n, step in enumerate(expected.steps, 1)
    ]
    assert [line.split()[3] for line in lines[1::2]] == [step.item.id for step in expected.steps]


def test_sequence_json_holds_the_stage_its_source_and_each_steps_asset_with_its_reasons(index_dir: Path, hash_model):
    result = sequence(index_dir, "--segment", "smb", "--stage", "decision", "--steps", "2", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["stage"], data["stage_source"]) == ("decision", {"kind": "given"})
    assert [step["stage"] for step in data["steps"]] == ["decision", "retention"]
    for step in data["steps"]:
        assert sum(step["item"]["reasons"].values()) == pytest.approx(step["item"]["score"], abs=1e-5)
        assert "body" not in step["item"]["asset"]


def test_a_sequence_the_library_cannot_fill_says_how_many_steps_it_found(
    index_dir: Path, hash_model, small_library: list[Asset]
):
    exclude = [arg for asset in small_library[2:] for arg in ("--exclude", asset.id)]

    result = sequence(index_dir, "--segment", "smb", "--stage", "awareness", "--steps", "5", *exclude)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "Only 2 of 5 steps: no other asset fits this buyer."


def test_a_sequence_with_an_unknown_signal_fails_with_one_line_listing_the_known_signals(index_dir: Path, hash_model):
    result = sequence(index_dir, "--segment", "smb", "--signal", "signed")

    assert result.exit_code == 1
    assert result.output == f"Error: unknown buying signal 'signed'; known signals are {KNOWN_SIGNALS}\n"


@pytest.mark.parametrize("steps", ["0", "13"])
def test_a_sequence_of_steps_outside_one_to_twelve_is_a_usage_error(index_dir: Path, hash_model, steps: str):
    result = sequence(index_dir, "--segment", "smb", "--steps", steps)

    assert result.exit_code == 2
    assert "Invalid value for '--steps'" in result.output


def test_a_folder_without_an_index_fails_with_the_command_to_build_one(tmp_path: Path):
    result = recommend(tmp_path / "none", "--segment", "smb")

    assert result.exit_code == 1
    assert result.output == (
        f"Error: no index in {tmp_path / 'none'}: build one with "
        f"`recommender build-index --index-dir {tmp_path / 'none'}`\n"
    )


def test_an_unknown_weight_in_the_config_fails_with_one_line(index_dir: Path, hash_model, tmp_path: Path):
    config = tmp_path / "ranking.toml"
    config.write_text("[weights]\nrecency = 1.0\n", encoding="utf-8")

    result = recommend(index_dir, "--segment", "smb", "--config", config)

    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {config} [weights]: unknown ['recency']; known are ")
    assert result.output.count("\n") == 1


def test_an_unknown_default_stage_in_the_config_fails_with_one_line(index_dir: Path, hash_model, tmp_path: Path):
    config = tmp_path / "ranking.toml"
    config.write_text('default_stage = "purchase"\n', encoding="utf-8")

    result = recommend(index_dir, "--segment", "smb", "--config", config)

    assert result.exit_code == 1
    assert result.output == (
        f"Error: {config}: default_stage must be one of awareness, consideration, decision, retention, not 'purchase'\n"
    )


# -- the installed script with the real model --------------------------------------------------------------

RECOMMENDER = shutil.which("recommender", path=str(Path(sys.executable).parent)) or "recommender"
UNREACHABLE = "http://127.0.0.1:9"  # a proxy nothing listens on: a download attempt fails instead


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"RECOMMENDER_INDEX_DIR", "NO_PROXY", "no_proxy"}}
    env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env |= {name: UNREACHABLE for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
    return subprocess.run([RECOMMENDER, *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow  # two model loads in subprocesses: ~15 s on an idle machine, much more on a busy one
def test_the_installed_script_recommends_across_languages_with_the_real_model(library_file: Path, tmp_path: Path):
    index_dir = tmp_path / "index"
    built = run("build-index", library_file, "--index-dir", index_dir, "--no-tagger")
    assert built.returncode == 0, built.stderr

    done = run(
        "recommend",
        "--index-dir",
        index_dir,
        "--segment",
        "enterprise",
        "--role",
        "finance",
        "--stage",
        "consideration",
        "--query",
        "Freigabe von Rechnungen im Konzern",
        "-k",
        "3",
        "--json",
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["stage"], result["stage_source"]) == ("consideration", {"kind": "given"})
    assert result["items"][0]["id"] == "ent-cons-2"
    assert len(result["items"]) == 3
