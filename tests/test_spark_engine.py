"""The Spark engine gives what the local engine gives, row for row, on Spark in local mode."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import sys
from pathlib import Path

import pytest
from conftest import HashEmbedder, write_rows

from content_library import LibraryError
from recommender import spark_engine
from recommender.batch import run_local
from recommender.batch_io import BatchError
from recommender.batch_jobs import PinnedDate, RecommendJob, TagJob
from recommender.engine import Recommender
from recommender.errors import ModelError
from recommender.tagging import Tagger

pyspark = pytest.importorskip("pyspark")

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")

DAY = dt.date(2026, 1, 1)


def fake_model(spec: str) -> HashEmbedder:
    return HashEmbedder()


def missing_model(spec: str) -> HashEmbedder:
    raise ModelError(f"cannot load the model {spec}: its files are missing")


@pytest.fixture(scope="module")
def spark():
    """One Spark session for the module (it takes seconds to start), two cores, few partitions."""
    import conftest
    from pyspark import cloudpickle
    from pyspark.sql import SparkSession

    # Executors import the project but not the tests: send the fake model's code along with the tasks.
    here = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(conftest)
    cloudpickle.register_pickle_by_value(here)
    # Workers run this interpreter (the virtual environment's), whatever PATH says; PySpark reads the
    # variable once, when the context starts.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYSPARK_PYTHON", os.environ.get("PYSPARK_PYTHON", sys.executable))
        session = (
            SparkSession.builder.master("local[2]")
            .appName("recommender-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .getOrCreate()
        )
    yield session
    session.stop()
    cloudpickle.unregister_pickle_by_value(conftest)
    cloudpickle.unregister_pickle_by_value(here)


@pytest.fixture(scope="module")
def tagger(batch_tagger: Path) -> Tagger:
    return Tagger.load(batch_tagger)


@pytest.fixture(scope="module")
def assets_file(tmp_path_factory: pytest.TempPathFactory, batch_assets: list[dict]) -> Path:
    """The 300 assets with three bad lines among them."""
    path = write_rows(tmp_path_factory.mktemp("spark-input") / "assets.jsonl", batch_assets)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[10] = "{not json"
    lines[150] = json.dumps({**batch_assets[150], "asset_type": "hologram"})
    lines.insert(200, "")
    lines[250] = "[1, 2]"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def part_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*"))


def spark_tag(spark, source: Path, output: Path, tagger: Tagger, **options):
    return spark_engine.run_tag(
        str(source), str(output), model="fake", tagger=tagger, spark=spark, embedder_factory=fake_model, **options
    )


def test_spark_tags_every_asset_exactly_as_the_local_engine(
    spark, tmp_path: Path, assets_file: Path, tagger: Tagger
) -> None:
    local_problems, spark_problems = [], []
    local = run_local(
        TagJob(HashEmbedder(), tagger),
        assets_file,
        tmp_path / "local.jsonl",
        batch_size=32,
        skip_invalid=True,
        on_problem=local_problems.append,
    )

    summary = spark_tag(
        spark,
        assets_file,
        tmp_path / "spark.jsonl",
        tagger,
        batch_size=32,
        skip_invalid=True,
        partitions=3,
        on_problem=spark_problems.append,
    )

    assert (
        (summary.read, summary.written, summary.skipped) == (local.read, local.written, local.skipped) == (300, 297, 3)
    )
    assert spark_problems == local_problems
    assert [p.location for p in spark_problems] == ["line 11", "line 151", "line 251"]
    spark_output = b"".join(path.read_bytes() for path in part_files(tmp_path / "spark.jsonl"))
    assert spark_output == (tmp_path / "local.jsonl").read_bytes()
    assert not (tmp_path / "spark.jsonl.partial").exists()


def test_spark_stops_on_bad_records_with_the_local_engines_message(
    spark, tmp_path: Path, assets_file: Path, tagger: Tagger
) -> None:
    with pytest.raises(LibraryError) as local:
        run_local(TagJob(HashEmbedder(), tagger), assets_file, tmp_path / "local.jsonl")

    with pytest.raises(LibraryError) as on_spark:
        spark_tag(spark, assets_file, tmp_path / "spark.jsonl", tagger)

    assert str(on_spark.value) == str(local.value)
    assert not (tmp_path / "spark.jsonl").exists()


def test_an_input_spark_cannot_read_is_one_clear_error(spark, tmp_path: Path, tagger: Tagger) -> None:
    with pytest.raises(BatchError, match=r"Spark cannot read '.*missing\.jsonl': \[PATH_NOT_FOUND\]"):
        spark_tag(spark, tmp_path / "missing.jsonl", tmp_path / "out.jsonl", tagger)


def test_an_error_in_a_task_is_reported_in_one_line(
    spark, tmp_path: Path, batch_contacts: list[dict], batch_index: Path
) -> None:
    source = write_rows(tmp_path / "contacts.jsonl", batch_contacts[:5])

    with pytest.raises(BatchError) as caught:
        spark_engine.run_recommend(
            str(source), str(tmp_path / "out.jsonl"), index_dir=batch_index, spark=spark, embedder_factory=missing_model
        )

    assert str(caught.value) == (
        "a Spark task failed: recommender.errors.ModelError: cannot load the model test-hash-64: its files are missing"
    )
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_spark_writes_csv_and_parquet_as_the_local_engine(
    spark, tmp_path: Path, batch_assets: list[dict], tagger: Tagger, suffix: str
) -> None:
    source = write_rows(tmp_path / "assets.jsonl", batch_assets[:120])
    run_local(TagJob(HashEmbedder(), tagger), source, tmp_path / f"local{suffix}", batch_size=32)

    spark_tag(spark, source, tmp_path / f"spark{suffix}", tagger, batch_size=32, partitions=2)

    if suffix == ".csv":
        rows = []
        for path in part_files(tmp_path / "spark.csv"):
            with open(path, encoding="utf-8", newline="") as fh:
                part = list(csv.reader(fh))
            rows += part if not rows else part[1:]  # every part file starts with the header
        with open(tmp_path / "local.csv", encoding="utf-8", newline="") as fh:
            assert rows == list(csv.reader(fh))
    else:
        import pyarrow.parquet as pq

        assert (
            pq.read_table(tmp_path / "spark.parquet").to_pylist()
            == pq.read_table(tmp_path / "local.parquet").to_pylist()
        )


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".parquet", "/"])
def test_spark_reads_every_input_format(
    spark, tmp_path: Path, batch_assets: list[dict], tagger: Tagger, suffix: str
) -> None:
    from test_batch import write_markdown_folder

    rows = sorted(batch_assets[:60], key=lambda row: f"{row['id']}.md")
    source = (
        write_markdown_folder(tmp_path / "md", rows) if suffix == "/" else write_rows(tmp_path / f"in{suffix}", rows)
    )
    run_local(TagJob(HashEmbedder(), tagger), source, tmp_path / "local.jsonl", batch_size=16)

    spark_tag(spark, source, tmp_path / "spark.jsonl", tagger, batch_size=16, partitions=2)

    spark_output = b"".join(path.read_bytes() for path in part_files(tmp_path / "spark.jsonl"))
    assert spark_output == (tmp_path / "local.jsonl").read_bytes()


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_spark_locates_bad_csv_rows_by_line_like_the_local_engine(
    spark, tmp_path: Path, batch_assets: list[dict], tagger: Tagger, delimiter: str
) -> None:
    rows = [dict(row) for row in batch_assets[:12]]
    rows[4]["body"] = "A body\nover three\nlines."
    rows[6]["asset_type"] = "hologram"
    source = write_rows(tmp_path / "in.csv", rows, delimiter=delimiter)
    with open(source, "a", encoding="utf-8") as fh:
        fh.write(delimiter.join("extra cells than the header has here and more and more and more and more".split()))
        fh.write("\n")
    local_problems, spark_problems = [], []
    run_local(
        TagJob(HashEmbedder(), tagger),
        source,
        tmp_path / "l.jsonl",
        skip_invalid=True,
        on_problem=local_problems.append,
    )

    spark_tag(spark, source, tmp_path / "s.jsonl", tagger, skip_invalid=True, on_problem=spark_problems.append)

    assert [(p.location, p.field) for p in spark_problems] == [("line 10", "asset_type"), ("line 16", None)]
    assert spark_problems == local_problems


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_record_that_is_not_utf8_is_its_own_problem_as_on_the_local_engine(
    spark, tmp_path: Path, batch_assets: list[dict], tagger: Tagger, suffix: str
) -> None:
    rows = [dict(row) for row in batch_assets[:6]]
    rows[2]["title"] = "Stra\u00dfenbahn f\u00fcr M\u00fcnchen"
    source = write_rows(tmp_path / f"in{suffix}", rows)
    # That record as a spreadsheet or an old CMS writes it: Windows-1252, not UTF-8 (Spark would read U+FFFD).
    source.write_bytes(source.read_bytes().replace(rows[2]["title"].encode(), rows[2]["title"].encode("cp1252")))
    local_problems, spark_problems = [], []
    job = TagJob(HashEmbedder(), tagger)
    run_local(job, source, tmp_path / "l.jsonl", skip_invalid=True, on_problem=local_problems.append)

    spark_tag(spark, source, tmp_path / "s.jsonl", tagger, skip_invalid=True, on_problem=spark_problems.append)

    line = 3 if suffix == ".jsonl" else 4  # CSV's header is line 1
    assert [(p.location, p.message) for p in spark_problems] == [
        (
            f"line {line}",
            "is not UTF-8 text; save the file as UTF-8, or give its encoding (--encoding cp1252)",
        )
    ]
    assert spark_problems == local_problems
    spark_output = b"".join(path.read_bytes() for path in part_files(tmp_path / "s.jsonl"))
    assert spark_output == (tmp_path / "l.jsonl").read_bytes()
    assert "\ufffd" not in spark_output.decode()


def in_cp1252(row: dict) -> bool:
    try:
        json.dumps(row, ensure_ascii=False, default=str).encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_file_in_its_given_encoding_reads_as_on_the_local_engine(
    spark, tmp_path: Path, batch_assets: list[dict], tagger: Tagger, suffix: str
) -> None:
    rows = [dict(row) for row in batch_assets if in_cp1252(row)][:6]
    rows[2]["title"] = "Stra\u00dfenbahn f\u00fcr M\u00fcnchen \u2013 \u20ac"
    source = write_rows(tmp_path / f"in{suffix}", rows)
    # The whole file as Excel on Western Windows saves it (the dash and the euro sign are cp1252's own).
    source.write_bytes(source.read_bytes().decode("utf-8").encode("cp1252"))
    run_local(TagJob(HashEmbedder(), tagger), source, tmp_path / "l.jsonl", encoding="cp1252")

    spark_tag(spark, source, tmp_path / "s.jsonl", tagger, encoding="cp1252")

    spark_output = b"".join(path.read_bytes() for path in part_files(tmp_path / "s.jsonl"))
    assert spark_output == (tmp_path / "l.jsonl").read_bytes()
    assert rows[2]["title"] in spark_output.decode()


def test_spark_locates_bad_json_array_items_by_index_like_the_local_engine(
    spark, tmp_path: Path, batch_assets: list[dict], tagger: Tagger
) -> None:
    rows: list = [dict(row) for row in batch_assets[:12]]
    rows[3]["asset_type"] = "hologram"
    rows[9] = ["not", "an", "asset"]
    source = write_rows(tmp_path / "in.json", rows)
    local_problems, spark_problems = [], []
    job = TagJob(HashEmbedder(), tagger)
    run_local(job, source, tmp_path / "l.jsonl", skip_invalid=True, on_problem=local_problems.append)

    spark_tag(spark, source, tmp_path / "s.jsonl", tagger, skip_invalid=True, on_problem=spark_problems.append)

    assert [(p.location, p.field) for p in spark_problems] == [("array index 3", "asset_type"), ("array index 9", None)]
    assert spark_problems == local_problems


def test_spark_recommends_exactly_as_the_local_engine(
    spark, tmp_path: Path, batch_contacts: list[dict], batch_index: Path
) -> None:
    source = write_rows(tmp_path / "contacts.jsonl", batch_contacts)
    recommender = Recommender(batch_index, HashEmbedder(), today=PinnedDate(DAY))
    run_local(RecommendJob(recommender, today=PinnedDate(DAY)), source, tmp_path / "local.jsonl", batch_size=32)

    summary = spark_engine.run_recommend(
        str(source),
        str(tmp_path / "spark.jsonl"),
        index_dir=batch_index,
        today=DAY,
        batch_size=32,
        partitions=3,
        spark=spark,
        embedder_factory=fake_model,
    )

    assert (summary.read, summary.written, summary.skipped) == (200, 200, 0)
    spark_output = b"".join(path.read_bytes() for path in part_files(tmp_path / "spark.jsonl"))
    assert spark_output == (tmp_path / "local.jsonl").read_bytes()


def test_spark_builds_nurture_sequences_exactly_as_the_local_engine(
    spark, tmp_path: Path, batch_contacts: list[dict], batch_index: Path
) -> None:
    contacts = [{k: v for k, v in contact.items() if k != "k"} for contact in batch_contacts[:40]]
    source = write_rows(tmp_path / "contacts.jsonl", contacts)
    recommender = Recommender(batch_index, HashEmbedder(), today=PinnedDate(DAY))
    run_local(RecommendJob(recommender, steps=4, today=PinnedDate(DAY)), source, tmp_path / "local.jsonl")

    spark_engine.run_recommend(
        str(source),
        str(tmp_path / "spark.jsonl"),
        index_dir=batch_index,
        steps=4,
        today=DAY,
        partitions=2,
        spark=spark,
        embedder_factory=fake_model,
    )

    spark_output = b"".join(path.read_bytes() for path in part_files(tmp_path / "spark.jsonl"))
    assert spark_output == (tmp_path / "local.jsonl").read_bytes()


@pytest.mark.slow
def test_a_shipped_index_gives_the_same_recommendations_and_replaces_the_earlier_output(
    spark, tmp_path: Path, batch_contacts: list[dict], batch_index: Path
) -> None:
    source = write_rows(tmp_path / "contacts.csv", batch_contacts[:50])
    options = {"index_dir": batch_index, "today": DAY, "spark": spark, "embedder_factory": fake_model}
    spark_engine.run_recommend(str(source), str(tmp_path / "shared.csv"), **options)
    (tmp_path / "shipped.csv").mkdir()
    (tmp_path / "shipped.csv" / "stale.csv").write_text("from an earlier run\n", encoding="utf-8")

    spark_engine.run_recommend(str(source), str(tmp_path / "shipped.csv"), ship_index=True, **options)

    assert not (tmp_path / "shipped.csv" / "stale.csv").exists()
    shipped = [path.read_text(encoding="utf-8") for path in part_files(tmp_path / "shipped.csv")]
    assert shipped == [path.read_text(encoding="utf-8") for path in part_files(tmp_path / "shared.csv")]


@pytest.mark.slow
def test_spark_tags_like_the_local_engine_with_the_shipped_model(
    spark, tmp_path: Path, batch_assets: list[dict]
) -> None:
    from models import TAGGER_DIR
    from recommender.embeddings import load_embedder

    shipped = Tagger.load(TAGGER_DIR)
    source = write_rows(tmp_path / "assets.jsonl", batch_assets[1:121:2])  # 60 assets, all to predict
    run_local(TagJob(load_embedder(shipped.model_), shipped), source, tmp_path / "local.jsonl", batch_size=16)

    spark_engine.run_tag(
        str(source), str(tmp_path / "spark.jsonl"), model=shipped.model_, tagger=shipped, batch_size=16, spark=spark
    )

    spark_output = b"".join(path.read_bytes() for path in part_files(tmp_path / "spark.jsonl"))
    assert spark_output == (tmp_path / "local.jsonl").read_bytes()
