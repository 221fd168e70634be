"""The `recommender` command end to end: real processes, the real model, a tiny library in every format."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from recommender.cli import main

RECOMMENDER = shutil.which("recommender", path=str(Path(sys.executable).parent)) or "recommender"
# A proxy nothing listens on: a command that tried to download a model would fail, not download.
UNREACHABLE = "http://127.0.0.1:9"


def record(asset_id: str, title: str, body: str, asset_type: str, language: str, **labels: list[str]) -> dict:
    return {
        "id": asset_id,
        "title": title,
        "body": body,
        "asset_type": asset_type,
        "language": language,
        "url": f"https://example.com/{asset_id}",
        "published": "2025-03-01",
        "segments": labels.get("segments", ["enterprise"]),
        "stages": labels.get("stages", ["consideration"]),
        "roles": labels.get("roles", ["finance"]),
    }


JSONL_ASSETS = [
    record(
        "invoice-approval",
        "Invoice approval in three clicks",
        "How finance teams route supplier invoices to the right approver and close the month on time.",
        "whitepaper",
        "en",
    ),
    record(
        "sso-sicherheit",
        "Sicherheit und Single Sign-on für Ihre IT",
        "Wie die IT-Abteilung Anmeldungen mit SAML und SCIM zentral verwaltet und Audits besteht.",
        "datasheet",
        "de",
        stages=["decision"],
        roles=["it"],
    ),
]
CSV_ASSETS = [
    record(
        "harga-paket",
        "Harga paket per bulan",
        "Paket untuk usaha kecil: bayar per bulan, berhenti kapan saja.",
        "pricing",
        "id",
        segments=["smb"],
        stages=["decision"],
        roles=["owner"],
    )
]
PARQUET_ASSETS = [
    record(
        "retailer-story",
        "A retailer closes its books in two days",
        "A customer story: 400 stores, one payables team, and a close that used to take a week.",
        "case_study",
        "en",
        stages=["decision"],
    )
]
MARKDOWN_ASSETS = [
    record(
        "vendor-checklist",
        "Checklist for choosing an accounts payable vendor",
        "Ten questions procurement should ask before signing: data residency, support hours, exit terms.",
        "checklist",
        "en",
        roles=["procurement"],
    )
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_csv(path: Path, records: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, list(records[0]))
        writer.writeheader()
        writer.writerows({k: "|".join(v) if isinstance(v, list) else v for k, v in r.items()} for r in records)
    return path


def write_parquet(path: Path, records: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(records), path)
    return path


def write_markdown(folder: Path, records: list[dict]) -> Path:
    folder.mkdir()
    for r in records:
        front = {k: v for k, v in r.items() if k != "body"}
        (folder / f"{r['id']}.md").write_text(f"---\n{yaml.safe_dump(front)}---\n\n{r['body']}\n", encoding="utf-8")
    return folder


FORMATS = {
    "jsonl": (lambda folder: write_jsonl(folder / "library.jsonl", JSONL_ASSETS), JSONL_ASSETS),
    # An export whose language column is empty: the build reads the language from the text.
    "csv": (lambda folder: write_csv(folder / "library.csv", [r | {"language": ""} for r in CSV_ASSETS]), CSV_ASSETS),
    "parquet": (lambda folder: write_parquet(folder / "library.parquet", PARQUET_ASSETS), PARQUET_ASSETS),
    "markdown": (lambda folder: write_markdown(folder / "markdown", MARKDOWN_ASSETS), MARKDOWN_ASSETS),
}


def run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the installed `recommender` script offline, as a user's shell would."""
    env = {k: v for k, v in os.environ.items() if k not in {"RECOMMENDER_INDEX_DIR", "NO_PROXY", "no_proxy"}}
    env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env |= {name: UNREACHABLE for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
    done = subprocess.run(
        [RECOMMENDER, *map(str, args)], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def libraries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("libraries")
    return {name: write(folder) for name, (write, _) in FORMATS.items()}


@pytest.fixture(scope="module")
def built(libraries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One index built by the CLI from a library spread over all four formats: (index_dir, stdout)."""
    index_dir = tmp_path_factory.mktemp("cli") / "index"
    done = run("build-index", *libraries.values(), "--index-dir", index_dir, "--no-tagger")
    return index_dir, done.stdout


# -- check-library -----------------------------------------------------------------------------------


def test_check_library_reads_every_format_and_prints_what_a_build_would_find(libraries: dict[str, Path]):
    done = run("check-library", *libraries.values())

    assert done.stdout.splitlines() == [
        "Read 5 assets from 4 files.",
        "Asset types: case_study 1, checklist 1, datasheet 1, pricing 1, whitepaper 1",
        "Languages: de 1, en 3, id 1",
        "Assets with curated labels: segments 5, stages 5, roles 5",
        "Languages read from the text of records that gave none: id 1",
    ]


def test_check_library_says_which_type_names_it_read_by_a_word(tmp_path: Path):
    rows = [JSONL_ASSETS[0] | {"asset_type": "Quick Start Guide"}, JSONL_ASSETS[1]]
    library = write_jsonl(tmp_path / "library.jsonl", rows)

    printed = run("check-library", library).stdout.splitlines()
    report = json.loads(run("check-library", library, "--json").stdout)

    assert printed[4] == (
        "Asset types read by a word of their name: 'Quick Start Guide' as guide (1); to read a name otherwise, "
        "list it in your own names file (RECOMMENDER_ASSET_TYPES)"
    )
    assert report["types_by_word"] == {"Quick Start Guide": {"asset_type": "guide", "assets": 1}}


def test_check_library_lists_invalid_records_and_fails_unless_told_to_skip_them(tmp_path: Path):
    rows = [JSONL_ASSETS[0], JSONL_ASSETS[1] | {"asset_type": "hologram"}, JSONL_ASSETS[0] | {"Author": "Jo"}]
    library = write_jsonl(tmp_path / "library.jsonl", rows)

    failed = run("check-library", library, check=False)
    skipped = run("check-library", library, "--skip-invalid", "--json")

    assert failed.returncode == 1
    assert failed.stderr.splitlines()[1].startswith(f"  {library}, line 2, field asset_type: 'hologram' is not one")
    report = json.loads(skipped.stdout)
    assert (report["asset_count"], report["ignored_fields"]) == (1, {"Author": 1})
    assert [line.split(", field ")[0] for line in report["skipped"]] == [f"{library}, line 2", f"{library}, line 3"]


def test_check_library_reads_an_export_in_the_encoding_given(tmp_path: Path):
    library = write_jsonl(
        tmp_path / "library.jsonl", [JSONL_ASSETS[0] | {"title": "F\u00fcr M\u00fcnchen \u2013 5 \u20ac"}]
    )
    library.write_bytes(library.read_text(encoding="utf-8").encode("cp1252"))

    refused = run("check-library", library, check=False)
    report = json.loads(run("check-library", library, "--encoding", "cp1252", "--json").stdout)

    assert refused.returncode == 1
    assert refused.stderr.splitlines()[1].endswith(
        "is not UTF-8 text; save the file as UTF-8, or give its encoding (--encoding cp1252)"
    )
    assert (report["asset_count"], report["skipped"]) == (1, [])


@pytest.mark.parametrize("command", ["check-library", "build-index", "train-tagger", "evaluate-holdout"])
def test_every_command_that_reads_a_library_reads_it_in_the_encoding_given(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import content_library
    from recommender.cli import evaluation, training

    asked = []

    def load_library(*paths, **options):
        asked.append(options.get("encoding"))
        raise content_library.LibraryError("stopped after reading")

    for module in (content_library, evaluation, training):
        monkeypatch.setattr(module, "load_library", load_library)
    library = write_jsonl(tmp_path / "library.jsonl", JSONL_ASSETS)

    result = CliRunner().invoke(main, [command, str(library), "--encoding", "Windows-1252"])

    assert (result.exit_code, asked) == (1, ["cp1252"]), result.output
    assert "Error: stopped after reading" in result.output


@pytest.mark.parametrize("command", ["check-library", "build-index", "train-tagger", "evaluate-holdout"])
def test_an_encoding_no_library_can_be_read_in_is_a_usage_error_naming_it(command: str):
    result = CliRunner().invoke(main, [command, "--encoding", "utf-16"])

    assert result.exit_code == 2
    assert "Invalid value for '--encoding': Encoding 'utf-16' is not supported" in result.output


# -- build-index -------------------------------------------------------------------------------------


def test_a_rebuild_says_how_many_assets_kept_their_vectors_and_re_embed_embeds_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from conftest import HashEmbedder

    from recommender import embeddings

    monkeypatch.setattr(embeddings, "load_embedder", lambda spec: HashEmbedder())
    library = write_jsonl(tmp_path / "library.jsonl", JSONL_ASSETS)
    build = ["build-index", str(library), "--index-dir", str(tmp_path / "index"), "--no-tagger"]

    first = json.loads(CliRunner().invoke(main, [*build, "--json"]).output)
    second = CliRunner().invoke(main, build).output.splitlines()
    again = json.loads(CliRunner().invoke(main, [*build, "--re-embed", "--json"]).output)

    assert (first["embedded"], first["reused"]) == (len(JSONL_ASSETS), 0)
    assert second[1] == (
        f"Embedded 0 assets; {len(JSONL_ASSETS)} kept the vector the version served before gave their unchanged "
        "text (--re-embed embeds every asset)."
    )
    assert (again["embedded"], again["reused"]) == (len(JSONL_ASSETS), 0)


def test_build_index_reads_every_format_at_once_and_prints_a_summary(built: tuple[Path, str]):
    index_dir, stdout = built
    lines = stdout.splitlines()

    assert re.fullmatch(
        rf"Built index version \S+ in {re.escape(str(index_dir))}: 5 assets, flat index, "
        r"model all-MiniLM-L6-v2@0\.25\+use-multilingual-v3@0\.75, \d+(\.\d+)? s\.",
        lines[0],
    )
    assert lines[1:] == [
        "Asset types: case_study 1, checklist 1, datasheet 1, pricing 1, whitepaper 1",
        "Languages: de 1, en 3, id 1",
        "Label sources: roles:curated 5, segments:curated 5, stages:curated 5",
        "Languages read from the text of records that gave none: id 1",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FORMATS))
def test_build_index_builds_a_library_of_one_format(name: str, libraries: dict[str, Path], tmp_path: Path):
    records = FORMATS[name][1]

    done = run("build-index", libraries[name], "--index-dir", tmp_path / "index", "--no-tagger", "--json")

    report = json.loads(done.stdout)
    assert report["asset_count"] == len(records)
    assert report["languages"] == {r["language"]: 1 for r in records}
    assert report["asset_types"] == {r["asset_type"]: 1 for r in records}


def build_bad_library(library: Path, index_dir: Path) -> subprocess.CompletedProcess[str]:
    # The light model and no tagger: the library is what fails, as fast as the CLI allows.
    args = ("build-index", library, "--index-dir", index_dir, "--model", "all-MiniLM-L6-v2", "--no-tagger")
    done = run(*args, check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert not index_dir.exists()
    return done


def test_a_library_file_of_an_unknown_format_fails_with_one_line_and_exit_status_1(tmp_path: Path):
    library = tmp_path / "library.txt"
    library.write_text("id,title\n", encoding="utf-8")

    done = build_bad_library(library, tmp_path / "index")

    assert done.stderr == (
        f"Error: Cannot load '{library}': unsupported file extension '.txt'. Supported formats: JSON Lines "
        "(.jsonl, .ndjson), a JSON array of assets (.json), CSV with commas, semicolons, tabs or bars between cells "
        "(.csv, .tsv), Parquet (.parquet), Markdown with YAML front matter (.md, .markdown), or a folder of such "
        "files.\n"
    )


def test_invalid_records_fail_with_exit_status_1_listing_each_with_file_line_and_field(tmp_path: Path):
    library = write_jsonl(
        tmp_path / "library.jsonl", [{**JSONL_ASSETS[0], "asset_type": "hologram"}, {**JSONL_ASSETS[1], "url": ""}]
    )

    done = build_bad_library(library, tmp_path / "index")

    assert done.stderr.splitlines() == [
        "Error: Found 2 problem(s) in 2 record(s) of the content library. "
        "Fix them, or skip those records (--skip-invalid on the command line, skip_invalid=True in Python):",
        f"  {library}, line 1, field asset_type: 'hologram' is not one of whitepaper, case_study, webinar, review, "
        "blog_post, ebook, datasheet, demo, pricing, roi_calculator, comparison, checklist, guide, report, video, "
        "nor another name for one such as 'white paper' (content_library/data/asset_types.toml lists them; add "
        "yours in a file of that form named by RECOMMENDER_ASSET_TYPES)",
        f"  {library}, line 2, field url: required but missing or empty",
    ]


def test_a_library_path_that_does_not_exist_is_a_usage_error(tmp_path: Path):
    done = run("build-index", tmp_path / "missing.jsonl", "--index-dir", tmp_path / "index", check=False)

    assert done.returncode == 2
    assert "Path '" in done.stderr and "missing.jsonl' does not exist" in done.stderr
    assert "Traceback" not in done.stderr


# -- info and search, each in a new process ---------------------------------------------------------


@pytest.fixture(scope="module")
def info(built: tuple[Path, str]) -> dict:
    index_dir, _ = built
    return json.loads(run("info", "--index-dir", index_dir, "--json").stdout)


def test_info_json_describes_an_index_built_by_another_process(info: dict):
    assert info["asset_count"] == 5
    assert info["languages"] == {"de": 1, "en": 3, "id": 1}
    assert info["asset_types"] == {"case_study": 1, "checklist": 1, "datasheet": 1, "pricing": 1, "whitepaper": 1}
    assert (info["dimension"], info["format_version"]) == (896, 1)
    assert info["model_spec"] == "all-MiniLM-L6-v2@0.25+use-multilingual-v3@0.75"
    assert info["pending_writes"] == 0
    assert info["missing_files"] == []


def test_info_text_says_a_fresh_build_lacks_no_file(built: tuple[Path, str]):
    index_dir, _ = built

    assert "missing_files: none" in run("info", "--index-dir", index_dir).stdout.splitlines()


def test_the_model_named_by_info_loads_offline_in_sentence_transformers(info: dict):
    script = (
        "import sys; from sentence_transformers import SentenceTransformer; "
        "print(SentenceTransformer(sys.argv[1], device='cpu').get_embedding_dimension())"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"NO_PROXY", "no_proxy"}}
    env |= {"HF_HUB_OFFLINE": "1", "HTTP_PROXY": UNREACHABLE, "HTTPS_PROXY": UNREACHABLE}

    done = subprocess.run(
        [sys.executable, "-c", script, info["model"]], capture_output=True, text=True, env=env, timeout=600
    )

    assert done.returncode == 0, done.stderr
    # The combined model's path is its MiniLM half: the other half is not a sentence-transformers model.
    assert done.stdout == "384\n"


def test_search_prints_the_closest_assets_first_across_languages(built: tuple[Path, str]):
    index_dir, _ = built

    done = run("search", "--index-dir", index_dir, "-k", "3", "single sign-on and security for IT")

    lines = done.stdout.splitlines()
    assert len(lines) == 3
    hits = [re.fullmatch(r" ?(-?\d\.\d{3})  (\S+) +(\S+) +(\w\w)  (.+)", line) for line in lines]
    assert all(hits), lines
    assert hits[0].groups()[1:] == ("sso-sicherheit", "datasheet", "de", "Sicherheit und Single Sign-on für Ihre IT")
    scores = [float(hit.group(1)) for hit in hits]
    assert scores == sorted(scores, reverse=True)


def test_info_on_a_folder_without_an_index_fails_with_the_command_to_build_one(tmp_path: Path):
    done = run("info", "--index-dir", tmp_path / "nothing", check=False)

    assert done.returncode == 1
    assert done.stderr == (
        f"Error: no index in {tmp_path / 'nothing'}: build one with "
        f"`recommender build-index --index-dir {tmp_path / 'nothing'}`\n"
    )


# -- help --------------------------------------------------------------------------------------------


def test_the_installed_script_lists_every_command():
    done = run("--help")

    listed = re.findall(r"^  (\S+)\s", done.stdout.split("Commands:")[1], flags=re.M)
    assert sorted(listed) == sorted(main.commands)


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_help_with_an_example_and_every_option_is_described(name: str):
    command = main.commands[name]

    result = CliRunner().invoke(main, [name, "--help"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: main {name} ")
    assert "Example" in result.output
    undescribed = [p.name for p in command.params if isinstance(p, click.Option) and not p.help]
    assert undescribed == []
