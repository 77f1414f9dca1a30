"""One threshold everywhere: the report's Evidently section agrees with our table and
names the two models challenger and champion."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from synthetic_churn import churn_snapshots
from synthetic_regression import SALES, store_weeks

from training_pipeline.ml.problem import resolve_roles
from training_pipeline.ml.reports import comparison_markdown, relabelled, validation_report_html
from training_pipeline.ml.splits import holdout_split
from training_pipeline.ml.tuning import fit_final
from training_pipeline.ml.workflow import compare
from training_pipeline_tests.churn_model import CHURN


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    return holdout_split(churn_snapshots(n_customers=300, n_snapshots=20), CHURN)


@pytest.fixture(scope="module")
def models(split):
    train, _ = split
    challenger = fit_final(train, CHURN, "hist_gradient_boosting", {"max_iter": 40})
    champion = fit_final(train, CHURN, "logistic_regression", {"C": 1.0})
    return challenger, champion


def evidently_counters(page: str, who: str) -> dict[str, float]:
    """The values of Evidently's "<who>: Model Quality Metrics" counters on the page."""
    title = f'"title": "{who}: Model Quality Metrics"'
    assert title in page, f"no {who} quality widget"
    params = re.search(r'"counters": (\[[^\]]*\])', page[page.index(title) :])
    return {c["label"]: float(c["value"]) for c in json.loads(params.group(1))}


def report(split, models, challenger_threshold: float, champion_threshold: float):
    _, holdout = split
    result = compare(
        models[0],
        challenger_threshold,
        models[1],
        champion_threshold,
        holdout,
        CHURN,
        None,
        "drift",
    )
    summary = comparison_markdown(result.challenger, result.champion, result.decision, "v2", "v1")
    page = validation_report_html(
        holdout,
        CHURN,
        result.challenger_scores,
        result.champion_scores,
        summary,
        challenger_threshold,
        champion_threshold,
    )
    return result, page


def test_evidently_measures_both_models_at_the_chosen_threshold_as_our_table_does(split, models):
    # Regression: our table said precision 0.534 / recall 0.723 at 0.2547 while
    # Evidently's section said 0.763 / 0.441, at its default 0.5.
    result, page = report(split, models, 0.27, 0.27)
    for who, ours in (("Challenger", result.challenger), ("Champion", result.champion)):
        theirs = evidently_counters(page, who)
        assert theirs["Precision"] == pytest.approx(ours.precision, abs=0.0005)
        assert theirs["Recall"] == pytest.approx(ours.recall, abs=0.0005)
        assert theirs["F1"] == pytest.approx(ours["f1"], abs=0.0005)
        assert theirs["ROC AUC"] == pytest.approx(ours["roc_auc"], abs=0.0005)
    assert "at the challenger's threshold 0.2700." in page
    assert "Paired bootstrap: ROC AUC difference" in page


def test_the_report_says_challenger_and_champion_instead_of_current_and_reference(split, models):
    _, page = report(split, models, 0.27, 0.27)
    data = page[page.index("var metric_") :]
    data = data[: data.index("</script>")]
    assert not re.search(r"\b(current|Current|reference|Reference)\b", data)
    assert '"text": "challenger"' in data and "RocAuc metric (champion)" in data


def test_a_champion_at_another_threshold_is_named_with_its_own(split, models):
    result, page = report(split, models, 0.27, 0.4)
    assert evidently_counters(page, "Challenger")["Precision"] == pytest.approx(
        result.challenger.precision, abs=0.0005
    )
    assert "the champion decides at 0.4000 in production" in page


def test_the_regression_report_is_relabelled_too():
    weeks = store_weeks()
    sales = resolve_roles(SALES, weeks)[0]
    train, holdout = holdout_split(weeks, sales)
    model = fit_final(train, sales, "ridge", {"alpha": 1.0})
    result = compare(model, None, model, None, holdout, sales, None, "drift")
    summary = comparison_markdown(result.challenger, result.champion, result.decision, "v2", "v1")
    page = validation_report_html(
        holdout, sales, result.challenger_scores, result.champion_scores, summary
    )
    data = page[page.index("var metric_") :]
    assert not re.search(r"\b(current|reference)\b", data[: data.index("</script>")], re.I)
    assert "challenger" in data
    with pytest.raises(ValueError, match="a regression report takes no threshold"):
        validation_report_html(holdout, sales, result.challenger_scores, None, summary, 0.5)


def test_relabelling_refuses_a_page_without_evidentlys_data():
    with pytest.raises(ValueError, match="no report data script"):
        relabelled("<html><body>nothing</body></html>")
