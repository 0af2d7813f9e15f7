"""Story-quality metrics on examples worked out by hand, and the dev-set floor."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.config import ClusteringConfig
from aggregator.errors import EvalError
from aggregator.evaluate import bcubed, evaluate, pairwise, read_labels
from cli import cli

from .conftest import shared_path

# The dev-set B3-F1 that the default configuration reaches (measured, see docs/stories.md), less a
# small margin for floating-point noise. The test fails if a change makes stories worse.
DEV_B3_F1_FLOOR = 0.90  # measured: 0.917

TRUTH = ["a", "a", "b", "b", "b"]
PREDICTED = [1, 1, 1, 2, 2]


def test_bcubed_by_hand() -> None:
    # cells (a,1)=2 (b,1)=1 (b,2)=2; predicted sizes 3,2; true sizes 2,3
    # precision = (2*2/3 + 1*1/3 + 2*2/2) / 5 = 11/15; recall = (2*2/2 + 1*1/3 + 2*2/3) / 5 = 11/15
    scores = bcubed(TRUTH, PREDICTED)
    assert scores.precision == pytest.approx(11 / 15)
    assert scores.recall == pytest.approx(11 / 15)
    assert scores.f1 == pytest.approx(11 / 15)


def test_bcubed_extremes() -> None:
    assert bcubed(TRUTH, TRUTH).f1 == pytest.approx(1.0)
    singletons = bcubed(TRUTH, list(range(5)))
    assert singletons.precision == pytest.approx(1.0)
    assert singletons.recall == pytest.approx((2 * 0.5 + 3 * (1 / 3)) / 5)
    lumped = bcubed(TRUTH, [0] * 5)
    assert lumped.recall == pytest.approx(1.0)
    assert lumped.precision == pytest.approx((2 * 2 / 5 + 3 * 3 / 5) / 5)


def test_pairwise_by_hand() -> None:
    # predicted pairs: 3 + 1 = 4; true pairs: 1 + 3 = 4; shared: (a,1) 1 + (b,2) 1 = 2
    scores = pairwise(TRUTH, PREDICTED)
    assert (scores.precision, scores.recall, scores.f1) == pytest.approx((0.5, 0.5, 0.5))


def test_eval_reports_ari_and_assignments(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    rows = [
        ("1", "Quillon launches Aero 7 phone with Q3 chip", "A", "s1", 1_700_000_000_000),
        ("2", "Quillon Aero 7 phone launch: the Q3 chip inside", "B", "s1", 1_700_000_060_000),
        ("3", "Norvania central bank raises interest rates", "A", "s2", 1_700_000_120_000),
        ("4", "Norvania central bank lifts interest rates again", "C", "s2", 1_700_000_180_000),
        ("5", "Recipe: slow roasted squash with sage", "D", "s3", 1_700_000_240_000),
    ]
    with labels.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ID", "TITLE", "URL", "PUBLISHER", "STORY", "HOSTNAME", "TIMESTAMP"])
        for id_, title, pub, story, stamp in rows:
            writer.writerow(
                [id_, title, f"https://{pub}.example/{id_}", pub, story, f"{pub}.example", stamp]
            )
    out = tmp_path / "assign.csv"
    result = CliRunner().invoke(cli, ["eval", str(labels), "--json", "--assignments", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["items"] == 5 and report["true_stories"] == 3
    assert report["bcubed"]["f1"] == pytest.approx(1.0)
    assert report["ari"] == pytest.approx(1.0)
    with out.open() as f:
        assigned = list(csv.DictReader(f))
    assert [r["ID"] for r in assigned] == ["1", "2", "3", "4", "5"]
    assert assigned[0]["PREDICTED"] == assigned[1]["PREDICTED"] != assigned[2]["PREDICTED"]


def test_ari_by_hand() -> None:
    from sklearn.metrics import adjusted_rand_score

    # contingency [[2,0],[1,2]]: index 2, expected 4*4/10 = 1.6, max 4 -> (2-1.6)/(4-1.6) = 1/6
    assert adjusted_rand_score(TRUTH, PREDICTED) == pytest.approx(1 / 6)


def test_bad_labels_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("ID,TITLE\n1,hello\n")
    with pytest.raises(EvalError, match="missing column"):
        read_labels(path)
    result = CliRunner().invoke(cli, ["eval", str(path)])
    assert (
        result.exit_code == 1 and "missing column(s) PUBLISHER, STORY, TIMESTAMP" in result.stderr
    )


def test_dev_set_reaches_the_floor_with_the_default_configuration() -> None:
    labels = shared_path("data", "uci-news-stories-dev.csv")
    report = evaluate(read_labels(labels), ClusteringConfig())
    assert report.items == 3239 and report.true_stories == 43
    assert report.bcubed.f1 >= DEV_B3_F1_FLOOR, report.to_json()


@pytest.mark.parametrize("stamp", ["99999999999999999", "-62135596800000", "soon"])
def test_a_timestamp_out_of_range_names_its_line(tmp_path: Path, stamp: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(f"ID,TITLE,PUBLISHER,STORY,TIMESTAMP\n1,Hello,A,s1,{stamp}\n")
    with pytest.raises(EvalError, match=r"labels.csv:2: TIMESTAMP"):
        read_labels(path)


def test_eval_says_how_hard_the_timing_was_and_what_became_of_distractors(
    tmp_path: Path,
) -> None:
    labels = tmp_path / "labels.csv"
    hour = 3_600_000
    rows = [
        # s1 spans 2 h, s2 spans 6 h, s3 one article: the median span is 2 h
        ("1", "Quillon launches Aero 7 phone with Q3 chip", "s1", 0),
        ("2", "Quillon Aero 7 phone launch: the Q3 chip inside", "s1", 2 * hour),
        ("3", "Norvania central bank raises interest rates", "s2", hour),
        ("4", "Norvania central bank lifts interest rates again", "s2", 7 * hour),
        ("5", "Brennholt Rovers win the Continental Cup final", "s3", 3 * hour),
        # a distractor that repeats s1's words is pulled into s1; the recipe is not
        (
            "6",
            "Quillon Aero 7 phone with Q3 chip: launch review",
            "distractor-1",
            2 * hour + 60_000,
        ),
        ("7", "Recipe: slow roasted squash with sage", "distractor-2", 4 * hour),
    ]
    with labels.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ID", "TITLE", "PUBLISHER", "STORY", "TIMESTAMP"])
        for id_, title, story, offset in rows:
            writer.writerow([id_, title, "P", story, 1_700_000_000_000 + offset])
    result = CliRunner().invoke(cli, ["eval", str(labels), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["median_span_seconds"] == 2 * 3600
    assert (report["distractors"], report["distractors_pulled"]) == (2, 1)
    text = CliRunner().invoke(cli, ["eval", str(labels)]).stdout
    assert "story span         median 2.0 h from a story's first article to its last" in text
    assert "distractors        1 of 2 pulled into a story (50.0%)" in text
