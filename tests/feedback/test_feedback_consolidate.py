"""Majority vote and Dawid-Skene: parity with crowd-kit and properties that must hold."""

from __future__ import annotations

import numpy as np
import pytest
from feedback_helpers import simulate
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.errors import ValidationError
from closedloop.feedback.consolidate import (
    AnswerTable,
    consolidate,
    dawid_skene,
    majority_vote,
)

Triples = list[tuple[str, str, str]]
# crowd-kit 1.4 still uses pandas keywords that pandas 3 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:The (inplace|copy) keyword:Warning")


def _crowdkit() -> object:
    return pytest.importorskip(
        "crowdkit.aggregation",
        reason="crowd-kit is the reference; pip install --no-deps crowd-kit",
    )


def _frame(triples: Triples) -> object:
    pd = pytest.importorskip("pandas", reason="crowd-kit needs pandas")
    return pd.DataFrame(triples, columns=["task", "worker", "label"])


def _accuracy(labels: dict[str, str], truth: dict[str, str]) -> float:
    return sum(labels[item] == label for item, label in truth.items()) / len(truth)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dawid_skene_matches_crowd_kit_on_mixed_quality_reviewers(seed: int) -> None:
    crowdkit = _crowdkit()
    triples, truth = simulate(seed, n_items=500, n_classes=4, per_item=3)
    table = AnswerTable.from_answers(triples)
    ours = dawid_skene(table)
    theirs = crowdkit.DawidSkene(n_iter=100, tol=1e-5).fit(_frame(triples))  # type: ignore[attr-defined]
    assert ours.n_iter == len(theirs.loss_history_)
    assert ours.labels() == theirs.labels_.loc[table.item_ids].tolist()
    expected = theirs.probas_.loc[table.item_ids, table.classes].to_numpy()
    np.testing.assert_allclose(ours.probabilities, expected, atol=1e-8)
    assert (
        _accuracy(dict(zip(table.item_ids, ours.labels(), strict=True)), truth) > 0.85
    )


def test_dawid_skene_beats_majority_vote_when_reviewers_are_adversarial_or_lazy() -> (
    None
):
    triples, truth = simulate(5, n_items=600, n_classes=3, per_item=5)
    table = AnswerTable.from_answers(triples)
    ds = dict(zip(table.item_ids, dawid_skene(table).labels(), strict=True))
    mv = dict(zip(table.item_ids, majority_vote(table).labels(), strict=True))
    assert _accuracy(ds, truth) > _accuracy(mv, truth)


def test_dawid_skene_rates_adversarial_and_lazy_reviewers_below_good_ones() -> None:
    triples, _ = simulate(3, n_items=600, n_classes=3, per_item=4)
    reliability = dawid_skene(AnswerTable.from_answers(triples)).worker_reliability()
    good = min(
        value for worker, value in reliability.items() if worker.startswith("good")
    )
    assert reliability["adversarial-6"] < 0.2 < good
    assert reliability["lazy-7"] < good


def test_dawid_skene_with_gold_matches_crowd_kit_true_labels() -> None:
    crowdkit = _crowdkit()
    pd = pytest.importorskip("pandas", reason="crowd-kit needs pandas")
    triples, truth = simulate(11, n_items=300, n_classes=3)
    gold = dict(list(truth.items())[:60])
    table = AnswerTable.from_answers(triples)
    ours = dawid_skene(table, gold=gold)
    theirs = crowdkit.DawidSkene(n_iter=100).fit(
        _frame(triples), true_labels=pd.Series(gold)
    )  # type: ignore[attr-defined]
    assert ours.labels() == theirs.labels_.loc[table.item_ids].tolist()
    assert all(
        label == truth[item]
        for item, label in zip(table.item_ids, ours.labels(), strict=True)
        if item in gold
    )


def test_warm_start_from_an_earlier_runs_matrices_matches_crowd_kit_assign() -> None:
    crowdkit = _crowdkit()
    pd = pytest.importorskip("pandas", reason="crowd-kit needs pandas")
    earlier, _ = simulate(21, n_items=400, n_classes=3)
    later, _ = simulate(22, n_items=200, n_classes=3)
    matrices = dawid_skene(AnswerTable.from_answers(earlier)).worker_matrices()
    table = AnswerTable.from_answers(later)
    ours = dawid_skene(table, initial_matrices=matrices)
    rows = [
        (
            (worker, answered),
            [matrices[worker][true][answered] for true in table.classes],
        )
        for worker in table.worker_ids
        for answered in table.classes
    ]
    index = pd.MultiIndex.from_tuples(
        [key for key, _ in rows], names=["worker", "label"]
    )
    initial = pd.DataFrame(
        [values for _, values in rows], index=index, columns=table.classes
    )
    model = crowdkit.DawidSkene(n_iter=100, initial_error_strategy="assign")  # type: ignore[attr-defined]
    theirs = model.fit(_frame(later), initial_error=initial)
    assert ours.labels() == theirs.labels_.loc[table.item_ids].tolist()


def test_majority_vote_matches_crowd_kit_labels_and_worker_skills_without_ties() -> (
    None
):
    crowdkit = _crowdkit()
    triples, _ = simulate(4, n_items=400, n_classes=2, per_item=3)
    table = AnswerTable.from_answers(triples)
    ours = majority_vote(table)
    theirs = crowdkit.MajorityVote().fit(_frame(triples))  # type: ignore[attr-defined]
    assert ours.labels() == theirs.labels_.loc[table.item_ids].tolist()
    np.testing.assert_allclose(
        ours.reliability, theirs.skills_.loc[table.worker_ids].to_numpy()
    )


def test_majority_vote_agrees_with_crowd_kit_except_that_ties_go_to_the_first_class() -> (
    None
):
    crowdkit = _crowdkit()
    triples, _ = simulate(8, n_items=400, n_classes=4, per_item=4)
    table = AnswerTable.from_answers(triples)
    ours = majority_vote(table)
    theirs = crowdkit.MajorityVote().fit(_frame(triples)).labels_  # type: ignore[attr-defined]
    for row, item in enumerate(table.item_ids):
        winners = np.flatnonzero(
            ours.probabilities[row] == ours.probabilities[row].max()
        )
        # crowd-kit's tie order follows pandas' column order; ours is the class order.
        assert theirs[item] in {table.classes[code] for code in winners}
        assert ours.label[row] == winners[0]


def test_a_tie_goes_to_the_label_first_in_label_set_order() -> None:
    triples = [("i", "w1", "dog"), ("i", "w2", "cat")]
    assert majority_vote(
        AnswerTable.from_answers(triples, ["dog", "cat"])
    ).labels() == ["dog"]
    assert majority_vote(AnswerTable.from_answers(triples)).labels() == ["cat"]


def test_outputs_per_item_hold_label_confidence_agreement_and_answer_count() -> None:
    triples = [("a", "w1", "x"), ("a", "w2", "x"), ("a", "w3", "y"), ("b", "w1", "y")]
    result = majority_vote(AnswerTable.from_answers(triples))
    assert result.labels() == ["x", "y"]
    np.testing.assert_allclose(result.agreement, [2 / 3, 1.0])
    np.testing.assert_allclose(result.confidence, [2 / 3, 1.0])
    assert result.n_answers.tolist() == [3, 1]


def test_labels_outside_the_label_set_and_unknown_methods_are_refused() -> None:
    with pytest.raises(ValidationError, match="every label must be in label_set"):
        AnswerTable.from_answers([("a", "w", "zebra")], ["cat", "dog"])
    with pytest.raises(ValidationError, match="method must be one of"):
        consolidate(AnswerTable.from_answers([("a", "w", "cat")]), "median")


def test_no_answers_give_an_empty_result() -> None:
    result = dawid_skene(AnswerTable.from_answers([], ["cat"]))
    assert result.labels() == [] and result.worker_reliability() == {}


_answers = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 4), st.sampled_from(["a", "b", "c"])),
    min_size=1,
    max_size=40,
    unique_by=lambda answer: (answer[0], answer[1]),
)


def _table(answers: list[tuple[int, int, str]]) -> AnswerTable:
    return AnswerTable.from_answers(
        [(f"i{i}", f"w{w}", label) for i, w, label in answers], ["a", "b", "c"]
    )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6),
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["majority-vote", "dawid-skene"]),
)
def test_unanimous_answers_give_that_label_with_agreement_one(
    n_workers: int, label: str, method: str
) -> None:
    table = AnswerTable.from_answers(
        [("item", f"w{w}", label) for w in range(n_workers)], ["a", "b", "c"]
    )
    result = consolidate(table, method)
    assert result.labels() == [label]
    assert result.agreement[0] == 1.0


@settings(max_examples=60, deadline=None)
@given(
    _answers,
    st.permutations(["a", "b", "c"]),
    st.sampled_from(["majority-vote", "dawid-skene"]),
)
def test_relabelling_classes_permutes_the_result(
    answers: list[tuple[int, int, str]], permutation: list[str], method: str
) -> None:
    rename = dict(zip(["a", "b", "c"], permutation, strict=True))
    original = consolidate(_table(answers), method)
    renamed = consolidate(
        _table([(i, w, rename[label]) for i, w, label in answers]), method
    )
    unique = original.confidence > np.sort(original.probabilities, axis=1)[:, -2] + 1e-6
    for row in np.flatnonzero(unique):
        assert renamed.labels()[row] == rename[original.labels()[row]]
    np.testing.assert_allclose(
        np.sort(renamed.probabilities, axis=1),
        np.sort(original.probabilities, axis=1),
        atol=1e-9,
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=30),
    st.integers(1, 4),
)
def test_majority_vote_and_dawid_skene_agree_when_all_workers_are_perfect(
    truth: list[str], n_workers: int
) -> None:
    table = AnswerTable.from_answers(
        [
            (f"i{i}", f"w{w}", label)
            for i, label in enumerate(truth)
            for w in range(n_workers)
        ],
        ["a", "b", "c"],
    )
    assert dawid_skene(table).labels() == majority_vote(table).labels()


@settings(max_examples=60, deadline=None)
@given(_answers)
def test_confidences_are_probabilities_and_agreement_is_a_share(
    answers: list[tuple[int, int, str]],
) -> None:
    result = dawid_skene(_table(answers))
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0)
    assert ((result.agreement >= 0) & (result.agreement <= 1)).all()
    assert ((result.reliability >= 0) & (result.reliability <= 1)).all()
