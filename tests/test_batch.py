"""The local batch engine: `tag` and `recommend-batch` over files, streaming, atomic and resumable."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import HashEmbedder, write_rows

from content_library import LibraryError, load_library
from recommender.batch import BatchSummary, Progress, ProgressMode, run_local
from recommender.batch_io import BatchError, OutputFormat, PartialOutput
from recommender.batch_jobs import TAG_TABLE, PinnedDate, RecommendJob, TagJob
from recommender.engine import Recommender
from recommender.errors import ModelError
from recommender.tagging import Tagger

DAY = dt.date(2026, 1, 1)
ASSET_FIELDS = ["id", "title", "body", "asset_type", "language", "url", "published", "segments", "stages", "roles"]
ASSET_FIELDS += ["topic", "tags", "scores", "detected_language", "model_version"]


class CountingEmbedder(HashEmbedder):
    """HashEmbedder that records the size of every encode call, and can fail on a given call."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.fail_on_call = fail_on_call

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.calls.append(len(texts))
        if len(self.calls) == self.fail_on_call:
            raise RuntimeError("simulated crash in the middle of a run")
        return super().encode(texts, batch_size=batch_size)


@pytest.fixture(scope="module")
def tagger(batch_tagger: Path) -> Tagger:
    return Tagger.load(batch_tagger)


@pytest.fixture
def assets_file(tmp_path: Path, batch_assets: list[dict]) -> Path:
    return write_rows(tmp_path / "assets.jsonl", batch_assets[:100])


def tag(source: Path, output: Path, tagger: Tagger, embedder: HashEmbedder | None = None, **options) -> BatchSummary:
    return run_local(TagJob(embedder or HashEmbedder(), tagger), source, output, **options)


def predicted_per_batch(rows: list[dict], batch_size: int) -> list[int]:
    """How many rows of each batch lack a curated field: only those are embedded."""
    chunks = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    return [sum(1 for row in chunk if not all(row.get(f) for f in ("segments", "stages", "roles"))) for chunk in chunks]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- what `tag` writes --------------------------------------------------------------------------------


def test_each_output_row_is_the_asset_with_labels_scores_language_and_model_version(
    tmp_path: Path, assets_file: Path, tagger: Tagger
) -> None:
    summary = tag(assets_file, tmp_path / "out.jsonl", tagger)

    rows = read_jsonl(tmp_path / "out.jsonl")
    assert [summary.read, summary.written, summary.skipped] == [100, 100, 0]
    assert list(rows[0]) == ASSET_FIELDS
    assert set(rows[1]["scores"]) == {"segments", "stages", "roles"}
    assert list(rows[1]["scores"]["stages"]) == ["awareness", "consideration", "decision", "retention"]


def test_the_inputs_own_fields_are_carried_through_to_json_lines_so_rows_join_back(
    tmp_path: Path, batch_assets: list[dict], tagger: Tagger
) -> None:
    row = {**batch_assets[1], "cms_path": "/resources/ap-guide", "cms": {"node": 17, "draft": False}}
    tag(write_rows(tmp_path / "in.jsonl", [row]), tmp_path / "out.jsonl", tagger)

    (out,) = read_jsonl(tmp_path / "out.jsonl")
    assert (out["cms_path"], out["cms"]) == ("/resources/ap-guide", {"node": 17, "draft": False})
    assert list(out)[-len(ASSET_FIELDS) :] == ASSET_FIELDS


def test_asset_fields_under_an_exports_names_are_read_as_the_assets_not_carried_as_its_own(
    tmp_path: Path, batch_assets: list[dict], tagger: Tagger
) -> None:
    exported = {name.replace("_", " ").title(): value for name, value in batch_assets[1].items()} | {"Owner": "Jo"}
    tag(write_rows(tmp_path / "in.jsonl", [batch_assets[1]]), tmp_path / "expected.jsonl", tagger)

    tag(write_rows(tmp_path / "export.jsonl", [exported]), tmp_path / "out.jsonl", tagger)

    (out,) = read_jsonl(tmp_path / "out.jsonl")
    assert "Asset Type" in exported
    assert out == {"Owner": "Jo"} | read_jsonl(tmp_path / "expected.jsonl")[0]


def test_curated_labels_are_kept_and_missing_ones_predicted(
    tmp_path: Path, batch_assets: list[dict], tagger: Tagger
) -> None:
    curated, stripped = batch_assets[2], batch_assets[1]  # all fields curated; segments and stages removed
    tag(write_rows(tmp_path / "in.jsonl", [curated, stripped]), tmp_path / "out.jsonl", tagger)

    kept, predicted = read_jsonl(tmp_path / "out.jsonl")
    assert (kept["segments"], kept["stages"], kept["roles"]) == (
        curated["segments"],
        curated["stages"],
        curated["roles"],
    )
    assert kept["scores"]["segments"] == {s: float(s in curated["segments"]) for s in ("enterprise", "smb")}
    assert kept["model_version"] is None  # nothing was predicted
    assert predicted["roles"] == stripped["roles"]
    probabilities = predicted["scores"]["stages"]
    assert predicted["stages"] == [s for s, p in probabilities.items() if p >= 0.5] or [
        max(probabilities, key=probabilities.get)
    ]
    assert predicted["model_version"] == tagger.version


def test_a_missing_language_is_detected_and_a_given_one_kept(
    tmp_path: Path, batch_assets: list[dict], tagger: Tagger
) -> None:
    german = "Wie die Rechnungsfreigabe im Konzern schneller wird und warum der Vorstand das wissen sollte."
    rows = [
        {**batch_assets[1], "id": "no-language", "title": "Rechnungsfreigabe", "body": german},
        {**batch_assets[1], "id": "labelled-en", "title": "Rechnungsfreigabe", "body": german, "language": "en"},
    ]
    del rows[0]["language"]
    tag(write_rows(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl", tagger)

    detected, given = read_jsonl(tmp_path / "out.jsonl")
    assert (detected["language"], detected["detected_language"]) == ("de", "de")
    assert (given["language"], given["detected_language"]) == ("en", "de")


def test_a_tagger_trained_on_another_model_is_refused(tagger: Tagger) -> None:
    with pytest.raises(ModelError, match="trained on embeddings of 'test-hash-64' but the model is 'other'"):
        TagJob(HashEmbedder(name="other"), tagger)


# -- formats ------------------------------------------------------------------------------------------


def write_markdown_folder(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir()
    for row in rows:
        front = {key: value for key, value in row.items() if key != "body"}
        text = f"---\n{yaml.safe_dump(front, allow_unicode=True)}---\n{row['body']}\n"
        (folder / f"{row['id']}.md").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("suffix", [".csv", ".parquet", "/"])
def test_every_input_format_gives_the_rows_json_lines_gives(
    tmp_path: Path, batch_assets: list[dict], tagger: Tagger, suffix: str
) -> None:
    rows = sorted(batch_assets[:40], key=lambda row: f"{row['id']}.md")  # a folder is read in file-name order
    tag(write_rows(tmp_path / "in.jsonl", rows), tmp_path / "expected.jsonl", tagger)
    if suffix == "/":
        source = write_markdown_folder(tmp_path / "content", rows)
    else:
        source = write_rows(tmp_path / f"in{suffix}", rows)

    tag(source, tmp_path / "out.jsonl", tagger)

    assert read_jsonl(tmp_path / "out.jsonl") == read_jsonl(tmp_path / "expected.jsonl")


def test_csv_output_flattens_lists_with_bars_and_scores_into_a_column_per_label(
    tmp_path: Path, assets_file: Path, tagger: Tagger
) -> None:
    tag(assets_file, tmp_path / "out.jsonl", tagger)
    tag(assets_file, tmp_path / "out.csv", tagger)

    expected = read_jsonl(tmp_path / "out.jsonl")
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == TAG_TABLE.names
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert row["segments"] == "|".join(want["segments"])
        assert row["tags"] == "|".join(want["tags"])
        assert row["published"] == (want["published"] or "")
        assert float(row["score_roles_end_user"]) == want["scores"]["roles"]["end_user"]
        assert row["body"] == want["body"]


def test_csv_output_reads_back_as_the_tagged_library(tmp_path: Path, assets_file: Path, tagger: Tagger) -> None:
    tag(assets_file, tmp_path / "out.jsonl", tagger)
    tag(assets_file, tmp_path / "out.csv", tagger)

    library = load_library(tmp_path / "out.csv")

    expected = read_jsonl(tmp_path / "out.jsonl")
    assert [(a.id, list(a.segments), list(a.stages), list(a.roles)) for a in library.assets] == [
        (row["id"], row["segments"], row["stages"], row["roles"]) for row in expected
    ]


def test_parquet_output_keeps_lists_dates_and_numbers_typed(tmp_path: Path, assets_file: Path, tagger: Tagger) -> None:
    tag(assets_file, tmp_path / "out.jsonl", tagger)
    tag(assets_file, tmp_path / "out.parquet", tagger)

    table = pq.read_table(tmp_path / "out.parquet")
    expected = read_jsonl(tmp_path / "out.jsonl")
    assert table.column_names == TAG_TABLE.names
    rows = table.to_pylist()
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert row["segments"] == want["segments"]
        assert row["published"] == (dt.date.fromisoformat(want["published"]) if want["published"] else None)
        assert row["score_stages_decision"] == want["scores"]["stages"]["decision"]
        assert row["model_version"] == want["model_version"]


def test_format_option_overrides_the_extension(tmp_path: Path, assets_file: Path, tagger: Tagger) -> None:
    tag(assets_file, tmp_path / "out.txt", tagger, fmt="csv")

    assert (tmp_path / "out.txt").read_text(encoding="utf-8").startswith("id,title,body,asset_type,")


def test_an_output_without_a_known_extension_asks_for_format(tmp_path: Path, assets_file: Path, tagger: Tagger) -> None:
    with pytest.raises(BatchError, match=r"cannot tell the output format of '.*out\.txt'.*pass --format"):
        tag(assets_file, tmp_path / "out.txt", tagger)


def test_an_empty_input_gives_an_empty_output_of_the_format(tmp_path: Path, tagger: Tagger) -> None:
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")

    summary = tag(tmp_path / "empty.jsonl", tmp_path / "out.parquet", tagger)

    assert (summary.read, summary.written) == (0, 0)
    assert pq.read_table(tmp_path / "out.parquet").column_names == TAG_TABLE.names


# -- bad records --------------------------------------------------------------------------------------


@pytest.fixture
def with_bad_records(tmp_path: Path, batch_assets: list[dict]) -> Path:
    path = write_rows(tmp_path / "bad.jsonl", batch_assets[:10])
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] = json.dumps({**batch_assets[3], "asset_type": "hologram"})
    lines[7] = "{not json"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bad_records_stop_the_run_before_any_work_listing_each_with_its_line(
    tmp_path: Path, with_bad_records: Path, tagger: Tagger
) -> None:
    embedder = CountingEmbedder()
    with pytest.raises(LibraryError) as caught:
        tag(with_bad_records, tmp_path / "out.jsonl", tagger, embedder)

    assert str(caught.value).splitlines() == [
        f"Found 2 invalid record(s) in {with_bad_records}. Fix them, or pass --skip-invalid to skip them:",
        f"  {with_bad_records}, line 4, field asset_type: 'hologram' is not one of whitepaper, case_study, "
        "webinar, review, blog_post, ebook, datasheet, demo, pricing, roi_calculator, comparison, checklist, "
        "guide, report, video, nor another name for one such as 'white paper' (content_library/data/asset_types.toml "
        "lists them; add yours in a file of that form named by RECOMMENDER_ASSET_TYPES)",
        f"  {with_bad_records}, line 8: is not valid JSON "
        "(Expecting property name enclosed in double quotes at column 2)",
    ]
    assert embedder.calls == []
    assert not (tmp_path / "out.jsonl").exists()


def test_skip_invalid_reports_each_bad_record_and_counts_it(
    tmp_path: Path, with_bad_records: Path, tagger: Tagger
) -> None:
    reported = []

    summary = tag(with_bad_records, tmp_path / "out.jsonl", tagger, skip_invalid=True, on_problem=reported.append)

    assert [(p.location, p.field) for p in reported] == [("line 4", "asset_type"), ("line 8", None)]
    assert (summary.read, summary.written, summary.skipped) == (10, 8, 2)
    assert summary.line() == f"tag: read 10 records, wrote 8, skipped 2 invalid; output {tmp_path / 'out.jsonl'}"
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 8


# -- streaming, atomicity, resume ---------------------------------------------------------------------


def test_the_model_sees_one_batch_at_a_time(
    tmp_path: Path, assets_file: Path, batch_assets: list[dict], tagger: Tagger
) -> None:
    embedder = CountingEmbedder()

    tag(assets_file, tmp_path / "out.jsonl", tagger, embedder, batch_size=16)

    assert embedder.calls == predicted_per_batch(batch_assets[:100], 16)


def test_a_crash_leaves_no_output_only_the_partial_file(tmp_path: Path, assets_file: Path, tagger: Tagger) -> None:
    with pytest.raises(RuntimeError, match="simulated crash"):
        tag(assets_file, tmp_path / "out.jsonl", tagger, CountingEmbedder(fail_on_call=3), batch_size=16)

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "assets.jsonl",
        "out.jsonl.partial",
        "out.jsonl.partial.state",
    ]
    assert len((tmp_path / "out.jsonl.partial").read_text(encoding="utf-8").splitlines()) == 32


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_resume_continues_after_the_last_finished_batch_and_gives_the_same_output(
    tmp_path: Path, assets_file: Path, batch_assets: list[dict], tagger: Tagger, suffix: str
) -> None:
    tag(assets_file, tmp_path / f"whole{suffix}", tagger, batch_size=16)
    output = tmp_path / f"out{suffix}"
    with pytest.raises(RuntimeError):
        tag(assets_file, output, tagger, CountingEmbedder(fail_on_call=4), batch_size=16)
    embedder = CountingEmbedder()

    summary = tag(assets_file, output, tagger, embedder, batch_size=16, resume=True)

    assert embedder.calls == predicted_per_batch(batch_assets[:100], 16)[3:]  # batches 4 to 7 only
    assert (summary.resumed_at, summary.read, summary.written) == (48, 100, 100)
    assert output.read_bytes() == (tmp_path / f"whole{suffix}").read_bytes()
    assert not (tmp_path / f"out{suffix}.partial").exists()
    assert not (tmp_path / f"out{suffix}.partial.state").exists()


def test_resume_refuses_an_input_changed_since_the_crash(
    tmp_path: Path, assets_file: Path, batch_assets: list[dict], tagger: Tagger
) -> None:
    with pytest.raises(RuntimeError):
        tag(assets_file, tmp_path / "out.jsonl", tagger, CountingEmbedder(fail_on_call=2), batch_size=16)
    write_rows(assets_file, batch_assets[1:101])

    with pytest.raises(BatchError, match="the input changed since the interrupted run .* run without --resume"):
        tag(assets_file, tmp_path / "out.jsonl", tagger, batch_size=16, resume=True)


def test_resume_refuses_other_settings(tmp_path: Path, assets_file: Path, tagger: Tagger) -> None:
    with pytest.raises(RuntimeError):
        tag(assets_file, tmp_path / "out.jsonl", tagger, CountingEmbedder(fail_on_call=2), batch_size=16)

    with pytest.raises(BatchError, match=r"the interrupted run used batch_size 16 \(now 32\)"):
        tag(assets_file, tmp_path / "out.jsonl", tagger, batch_size=32, resume=True)


def test_resume_refuses_a_partial_file_that_does_not_match_its_state(
    tmp_path: Path, assets_file: Path, tagger: Tagger
) -> None:
    with pytest.raises(RuntimeError):
        tag(assets_file, tmp_path / "out.jsonl", tagger, CountingEmbedder(fail_on_call=3), batch_size=16)
    partial = tmp_path / "out.jsonl.partial"
    partial.write_bytes(partial.read_bytes().replace(b'"id": "', b'"id": "x', 1))

    with pytest.raises(BatchError, match=r"out\.jsonl\.partial does not match .*out\.jsonl\.partial\.state"):
        tag(assets_file, tmp_path / "out.jsonl", tagger, batch_size=16, resume=True)


def test_a_run_without_resume_starts_over(
    tmp_path: Path, assets_file: Path, batch_assets: list[dict], tagger: Tagger
) -> None:
    with pytest.raises(RuntimeError):
        tag(assets_file, tmp_path / "out.jsonl", tagger, CountingEmbedder(fail_on_call=3), batch_size=16)
    embedder = CountingEmbedder()

    summary = tag(assets_file, tmp_path / "out.jsonl", tagger, embedder, batch_size=16)

    assert embedder.calls == predicted_per_batch(batch_assets[:100], 16)
    assert (summary.resumed_at, summary.written) == (0, 100)


def test_resume_with_nothing_to_resume_runs_from_the_start(tmp_path: Path, assets_file: Path, tagger: Tagger) -> None:
    summary = tag(assets_file, tmp_path / "out.jsonl", tagger, resume=True)

    assert (summary.resumed_at, summary.written) == (0, 100)


def test_a_second_run_on_the_same_output_is_refused(tmp_path: Path, assets_file: Path, tagger: Tagger) -> None:
    first = PartialOutput(tmp_path / "out.jsonl", OutputFormat.JSONL, TAG_TABLE)
    first.start("tag", "fingerprint", {})
    try:
        with pytest.raises(BatchError, match=r"another run is writing .*out\.jsonl"):
            tag(assets_file, tmp_path / "out.jsonl", tagger)
    finally:
        first.close()


def test_plain_progress_lines_give_count_rate_and_eta() -> None:
    stream = io.StringIO()
    progress = Progress(ProgressMode.LINES, 100, 20, "asset", every=0, stream=stream)
    progress.update(30)
    progress.close()

    line = stream.getvalue().splitlines()
    assert len(line) == 1
    assert re.fullmatch(r"progress: 50/100 assets \(50%\), [\d.]+ ?\w+/s, elapsed 00:00, ETA [\d:?]+", line[0])


# -- recommend-batch ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recommender(batch_index: Path) -> Recommender:
    return Recommender(batch_index, HashEmbedder(), today=PinnedDate(DAY))


def recommend(source: Path, output: Path, recommender: Recommender, k: int = 10, **options) -> BatchSummary:
    job = RecommendJob(recommender, k=k, today=PinnedDate(DAY))
    return run_local(job, source, output, **options)


def test_each_contact_gets_the_engines_recommendation(
    tmp_path: Path, batch_contacts: list[dict], recommender: Recommender
) -> None:
    from recommender.types import BuyerRequest

    contacts = batch_contacts[:60]
    recommend(write_rows(tmp_path / "contacts.jsonl", contacts), tmp_path / "out.jsonl", recommender, batch_size=16)

    rows = read_jsonl(tmp_path / "out.jsonl")
    assert [row["contact_id"] for row in rows] == [c["contact_id"] for c in contacts]
    for row, contact in zip(rows, contacts, strict=True):
        fields = {k: v for k, v in contact.items() if k != "contact_id" and v not in (None, [])}
        expected = recommender.recommend(BuyerRequest(**{"k": 10, **fields}))
        assert row["asset_ids"] == [item.id for item in expected.items]
        assert row["scores"] == pytest.approx([item.score for item in expected.items], abs=1e-6)
        assert (row["stage"], row["stage_source"]) == (expected.stage.value, str(expected.stage_source))
        assert row["items"][0] == {
            "rank": 1,
            "id": expected.items[0].id,
            "score": row["scores"][0],
            "title": expected.items[0].asset.title,
            "asset_type": expected.items[0].asset.asset_type.value,
            "language": expected.items[0].asset.language,
            "url": expected.items[0].asset.url,
        }
        assert row["index_version"] == recommender.version


def test_a_contact_with_the_asset_they_read_last_gets_the_engines_recommendation_after_it(
    tmp_path: Path, recommender: Recommender
) -> None:
    from recommender.types import BuyerRequest

    contact = {"contact_id": "c1", "segment": "enterprise", "reading": "helmdesk-0001"}
    recommend(write_rows(tmp_path / "contacts.csv", [contact]), tmp_path / "out.jsonl", recommender)

    expected = recommender.recommend(BuyerRequest(segment="enterprise", reading="helmdesk-0001"))
    assert read_jsonl(tmp_path / "out.jsonl")[0]["asset_ids"] == [item.id for item in expected.items]
    assert "helmdesk-0001" not in read_jsonl(tmp_path / "out.jsonl")[0]["asset_ids"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".parquet"])
def test_contacts_read_from_every_format_get_the_same_recommendations(
    tmp_path: Path, batch_contacts: list[dict], recommender: Recommender, suffix: str
) -> None:
    contacts = batch_contacts[:40]
    recommend(write_rows(tmp_path / "contacts.jsonl", contacts), tmp_path / "expected.jsonl", recommender)

    recommend(write_rows(tmp_path / f"contacts{suffix}", contacts), tmp_path / "out.jsonl", recommender)

    assert read_jsonl(tmp_path / "out.jsonl") == read_jsonl(tmp_path / "expected.jsonl")


def test_contact_columns_are_read_as_a_crm_export_names_them(
    tmp_path: Path, batch_contacts: list[dict], recommender: Recommender
) -> None:
    contacts = batch_contacts[:10]
    recommend(write_rows(tmp_path / "contacts.jsonl", contacts), tmp_path / "expected.jsonl", recommender)
    exported = [{f" {name.replace('_', ' ').title()}": value for name, value in row.items()} for row in contacts]

    recommend(write_rows(tmp_path / "export.csv", exported, delimiter=";"), tmp_path / "out.jsonl", recommender)

    assert list(exported[0])[:2] == [" Contact Id", " Segment"]
    assert read_jsonl(tmp_path / "out.jsonl") == read_jsonl(tmp_path / "expected.jsonl")


def test_recommendations_in_csv_list_ids_and_scores_and_carry_items_as_json(
    tmp_path: Path, batch_contacts: list[dict], recommender: Recommender
) -> None:
    source = write_rows(tmp_path / "contacts.jsonl", batch_contacts[:5])
    recommend(source, tmp_path / "out.jsonl", recommender, k=3)
    recommend(source, tmp_path / "out.csv", recommender, k=3)

    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    expected = read_jsonl(tmp_path / "out.jsonl")
    assert list(rows[0]) == ["contact_id", "stage", "stage_source", "asset_ids", "scores", "items", "index_version"]
    for row, want in zip(rows, expected, strict=True):
        assert row["asset_ids"] == "|".join(want["asset_ids"])
        assert [float(s) for s in row["scores"].split("|")] == want["scores"]
        assert json.loads(row["items"]) == want["items"]


def test_bad_contacts_are_reported_with_line_and_field(tmp_path: Path, recommender: Recommender) -> None:
    contacts = [
        {"contact_id": "ok", "segment": "smb"},
        {"contact_id": "c2", "segment": "midmarket"},
        {"contact_id": "c3", "segment": "smb", "signals": "site_visit|fax_received"},
        {"segment": "enterprise"},
        {"contact_id": "c5", "segment": "enterprise", "k": 500},
        {"contact_id": "c6", "segment": "smb", "reading": "no-such-asset"},
        {"contact_id": "c7", "segment": "enterprise", "role": "Intern"},
        {"contact_id": "c8", "segment": "enterprise", "role": "VP Finance"},
    ]
    reported = []

    summary = recommend(
        write_rows(tmp_path / "contacts.jsonl", contacts),
        tmp_path / "out.jsonl",
        recommender,
        skip_invalid=True,
        on_problem=reported.append,
    )

    assert [(p.location, p.field) for p in reported] == [
        ("line 2", "segment"),
        ("line 3", "signals"),
        ("line 4", "contact_id"),
        ("line 5", "k"),
        ("line 6", "reading"),
        ("line 7", "role"),
    ]
    assert reported[0].message == "'midmarket' is not one of enterprise, smb"
    assert reported[1].message.startswith("unknown buying signal 'fax_received'; known signals are site_visit, ")
    assert reported[4].message == "no asset 'no-such-asset' in the index"
    assert reported[5].message.startswith("'Intern' is not one of executive, finance, it, procurement, end_user, owner")
    assert (summary.read, summary.written, summary.skipped) == (8, 2, 6)


def test_with_steps_each_contact_gets_the_engines_nurture_sequence(
    tmp_path: Path, batch_contacts: list[dict], recommender: Recommender
) -> None:
    from recommender.types import BuyerRequest

    contacts = [{k: v for k, v in contact.items() if k != "k"} for contact in batch_contacts[:30]]
    job = RecommendJob(recommender, steps=3, today=PinnedDate(DAY))
    run_local(job, write_rows(tmp_path / "contacts.jsonl", contacts), tmp_path / "out.jsonl", batch_size=8)

    rows = read_jsonl(tmp_path / "out.jsonl")
    assert [row["contact_id"] for row in rows] == [c["contact_id"] for c in contacts]
    for row, contact in zip(rows, contacts, strict=True):
        fields = {k: v for k, v in contact.items() if k != "contact_id" and v not in (None, [])}
        expected = recommender.sequence(BuyerRequest(**fields), 3)
        assert (row["stage"], row["stage_source"]) == (expected.stage.value, str(expected.stage_source))
        assert row["asset_ids"] == [step.item.id for step in expected.steps]
        assert [(item["rank"], item["stage"]) for item in row["items"]] == [
            (n, step.stage.value) for n, step in enumerate(expected.steps, 1)
        ]


def test_with_steps_a_contact_row_giving_k_is_reported_on_the_k_field(tmp_path: Path, recommender: Recommender) -> None:
    contacts = [{"contact_id": "c1", "segment": "smb", "k": 3}, {"contact_id": "c2", "segment": "smb"}]
    reported = []
    job = RecommendJob(recommender, steps=2, today=PinnedDate(DAY))

    summary = run_local(
        job,
        write_rows(tmp_path / "contacts.csv", contacts),
        tmp_path / "out.jsonl",
        skip_invalid=True,
        on_problem=reported.append,
    )

    assert [(p.location, p.field) for p in reported] == [("line 2", "k")]
    assert reported[0].message.startswith("a nurture sequence holds one asset per step")
    assert (summary.written, summary.skipped) == (1, 1)


def test_a_run_of_sequences_does_not_resume_a_run_of_lists(
    tmp_path: Path, batch_contacts: list[dict], batch_index: Path
) -> None:
    contacts = [{k: v for k, v in contact.items() if k != "k"} for contact in batch_contacts[:40]]
    source = write_rows(tmp_path / "contacts.jsonl", contacts)
    lists = RecommendJob(Recommender(batch_index, HashEmbedder(), today=PinnedDate(DAY)), today=PinnedDate(DAY))
    lists.recommender.embedder = CountingEmbedder(fail_on_call=2)
    with pytest.raises(RuntimeError):
        run_local(lists, source, tmp_path / "out.jsonl", batch_size=16)
    sequences = RecommendJob(Recommender(batch_index, HashEmbedder()), steps=4, today=PinnedDate(DAY))

    with pytest.raises(BatchError, match=r"the interrupted run used steps None \(now 4\)"):
        run_local(sequences, source, tmp_path / "out.jsonl", batch_size=16, resume=True)


def test_a_resumed_run_ranks_against_the_date_the_run_started(
    tmp_path: Path, batch_contacts: list[dict], batch_index: Path
) -> None:
    source = write_rows(tmp_path / "contacts.jsonl", batch_contacts[:40])
    started = RecommendJob(Recommender(batch_index, HashEmbedder(), today=PinnedDate(DAY)), today=PinnedDate(DAY))
    failing = CountingEmbedder(fail_on_call=2)
    started.recommender.embedder = failing  # the second batch's query encoding fails
    with pytest.raises(RuntimeError):
        run_local(started, source, tmp_path / "out.jsonl", batch_size=16)
    later = PinnedDate(DAY + dt.timedelta(days=400))
    resumed = RecommendJob(Recommender(batch_index, HashEmbedder(), today=later), today=later)

    run_local(resumed, source, tmp_path / "out.jsonl", batch_size=16, resume=True)

    assert later() == DAY
    recommend(source, tmp_path / "whole.jsonl", Recommender(batch_index, HashEmbedder(), today=PinnedDate(DAY)))
    assert read_jsonl(tmp_path / "out.jsonl") == read_jsonl(tmp_path / "whole.jsonl")
