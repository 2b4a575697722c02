"""Tests for the human-loop activation-condition language (parse and evaluate)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.core import conditions as conditions_module
from closedloop.core.conditions import (
    ANY_LABEL,
    CONDITION_TYPES,
    MAX_NESTING_DEPTH,
    ActivationConditions,
    ActivationResult,
    Prediction,
    parse_conditions,
)
from closedloop.errors import ValidationError

ROOT = "HumanLoopActivationConditions"
FRAUD = Prediction("fraud", {"fraud": 0.62, "legit": 0.38})


def leaf(condition_type: str, **parameters: Any) -> dict[str, Any]:
    return {"ConditionType": condition_type, "ConditionParameters": parameters}


def sampling(percentage: Any) -> dict[str, Any]:
    return leaf("Sampling", RandomSamplingPercentage=percentage)


def model(**parameters: Any) -> dict[str, Any]:
    return leaf("ModelConfidenceCheck", **parameters)


def doc(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"Conditions": list(nodes)}


def run(
    document: dict[str, Any],
    prediction: Prediction | None = FRAUD,
    key: str = "item-1",
) -> ActivationResult:
    return parse_conditions(document).evaluate(prediction=prediction, sampling_key=key)


def seeded_keys(count: int = 20_000, seed: int = 20240601) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(128):032x}" for _ in range(count)]


def strip_results(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: strip_results(v) for k, v in node.items() if k != "EvaluationResult"}
    if isinstance(node, list):
        return [strip_results(item) for item in node]
    return node


# --- the public surface ------------------------------------------------------


def test_public_surface_is_pinned() -> None:
    assert sorted(conditions_module.__all__) == [
        "ANY_LABEL",
        "ActivationConditions",
        "ActivationResult",
        "CONDITION_TYPES",
        "DEFAULT_FIELD",
        "MAX_NESTING_DEPTH",
        "Prediction",
        "parse_conditions",
    ]
    assert set(CONDITION_TYPES) == {
        "ImportantFormKeyConfidenceCheck",
        "MissingImportantFormKey",
        "ModelConfidenceCheck",
        "ModerationLabelConfidenceCheck",
        "Sampling",
    }


# --- Prediction ----------------------------------------------------------------


def test_prediction_confidence_is_the_probability_of_its_label() -> None:
    assert Prediction("legit", {"fraud": 0.25, "legit": 0.75}).confidence == 0.75


def test_prediction_keeps_its_own_copy_of_the_probabilities() -> None:
    probabilities = {"a": 0.9, "b": 0.1}
    prediction = Prediction("a", probabilities)
    probabilities["a"] = 0.0

    assert prediction.confidence == 0.9
    with pytest.raises(TypeError):
        prediction.probabilities["a"] = 0.5  # type: ignore[index]


@pytest.mark.parametrize(
    ("label", "probabilities", "message"),
    [
        (
            "c",
            {"a": 0.5, "b": 0.5},
            "Prediction.label must be one of the classes in probabilities ['a', 'b']; got 'c'",
        ),
        (
            "a",
            {"a": 1.2},
            "Prediction.probabilities['a'] must be a number between 0 and 1; got 1.2",
        ),
        (
            "a",
            {"a": -0.1},
            "Prediction.probabilities['a'] must be a number between 0 and 1; got -0.1",
        ),
        (
            "a",
            {"a": True},
            "Prediction.probabilities['a'] must be a number between 0 and 1; got True",
        ),
        (
            "a",
            {"a": "0.5"},
            "Prediction.probabilities['a'] must be a number between 0 and 1; got '0.5'",
        ),
        (
            "a",
            {"a": float("nan")},
            "Prediction.probabilities['a'] must be a number between 0 and 1; got nan",
        ),
        (
            "a",
            {},
            "Prediction.probabilities must map at least one class to a probability; got {}",
        ),
    ],
)
def test_prediction_rejects_bad_input(
    label: str, probabilities: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Prediction(label, probabilities)
    assert caught.value.message == message


def test_prediction_accepts_integer_probabilities() -> None:
    assert Prediction("a", {"a": 1, "b": 0}).confidence == 1.0


# --- parsing -------------------------------------------------------------------


def test_json_string_and_mapping_parse_to_the_same_conditions() -> None:
    document = doc({"Or": [model(ConfidenceLessThan=70), sampling(5)]})

    from_text = parse_conditions(json.dumps(document))
    from_mapping = parse_conditions(document)

    assert from_text.document == from_mapping.document == document
    assert json.loads(from_text.to_json()) == document


def test_document_is_a_fresh_copy_each_time() -> None:
    conditions = parse_conditions(
        doc(
            leaf(
                "MissingImportantFormKey",
                ImportantFormKey="Name",
                ImportantFormKeyAliases=["Name:"],
            )
        )
    )
    first = conditions.document
    first["Conditions"][0]["ConditionParameters"]["ImportantFormKeyAliases"].append(
        "changed"
    )

    assert conditions.document["Conditions"][0]["ConditionParameters"][
        "ImportantFormKeyAliases"
    ] == ["Name:"]


def test_parse_does_not_depend_on_the_callers_mapping_afterwards() -> None:
    document = doc(model(ConfidenceLessThan=70))
    conditions = parse_conditions(document)
    document["Conditions"][0]["ConditionParameters"]["ConfidenceLessThan"] = 10

    assert conditions.evaluate(prediction=FRAUD, sampling_key="k").activated is True


def test_every_condition_type_parses() -> None:
    document = doc(
        sampling(10),
        model(LabelName="fraud", ConfidenceGreaterThanEquals=90),
        leaf(
            "ModerationLabelConfidenceCheck",
            ModerationLabelName="*",
            ConfidenceLessThanEquals=60,
        ),
        leaf(
            "ImportantFormKeyConfidenceCheck",
            ImportantFormKey="Mail address",
            ImportantFormKeyAliases=["Mail Address:", "Mailing Add:"],
            KeyValueBlockConfidenceLessThan=100,
            WordBlockConfidenceLessThan=100,
        ),
        leaf("MissingImportantFormKey", ImportantFormKey="Mail address"),
    )

    assert isinstance(parse_conditions(document), ActivationConditions)
    assert parse_conditions(document).document == document


def test_nesting_up_to_the_limit_is_accepted() -> None:
    document = doc(
        {"Or": [{"And": [sampling(50), model(ConfidenceLessThan=70)]}, sampling(1)]}
    )

    assert MAX_NESTING_DEPTH == 2
    assert parse_conditions(document).document == document


def deep(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = sampling(5)
    for level in range(levels):
        node = {("And", "Or")[level % 2]: [node]}
    return node


BAD_DOCUMENTS: list[tuple[Any, str, str]] = [
    ("{", ROOT, "HumanLoopActivationConditions must be valid JSON"),
    ('{"Conditions": [NaN]}', ROOT, "must be valid JSON"),
    (
        "[]",
        ROOT,
        "HumanLoopActivationConditions must be a JSON object with a Conditions list; got []",
    ),
    (
        5,
        ROOT,
        "HumanLoopActivationConditions must be a JSON string or an object; got 5",
    ),
    (
        {"Conditions": [sampling(5)], "Extra": 1},
        ROOT,
        "has unknown key 'Extra'; allowed: Conditions",
    ),
    ({}, f"{ROOT}.Conditions", "HumanLoopActivationConditions.Conditions is required"),
    ({"Conditions": {}}, f"{ROOT}.Conditions", "must be a list of conditions; got {}"),
    (
        {"Conditions": []},
        f"{ROOT}.Conditions",
        "HumanLoopActivationConditions.Conditions must hold at least one condition; got []",
    ),
    (
        {"Conditions": ["Sampling"]},
        f"{ROOT}.Conditions[0]",
        "must be an object with a ConditionType, And or Or; got 'Sampling'",
    ),
    (
        doc({"ConditionType": "Bogus", "ConditionParameters": {}}),
        f"{ROOT}.Conditions[0].ConditionType",
        "HumanLoopActivationConditions.Conditions[0].ConditionType must be one of ImportantFormKeyConfidenceCheck, "
        "MissingImportantFormKey, ModelConfidenceCheck, ModerationLabelConfidenceCheck, Sampling; got 'Bogus'",
    ),
    (
        doc({"ConditionType": 5, "ConditionParameters": {}}),
        f"{ROOT}.Conditions[0].ConditionType",
        "got 5",
    ),
    (
        doc({"ConditionType": "Sampling"}),
        f"{ROOT}.Conditions[0].ConditionParameters",
        "HumanLoopActivationConditions.Conditions[0].ConditionParameters is required for ConditionType 'Sampling'",
    ),
    (
        doc({"ConditionType": "Sampling", "ConditionParameters": [5]}),
        f"{ROOT}.Conditions[0].ConditionParameters",
        "must be an object; got [5]",
    ),
    (
        doc(leaf("Sampling", RandomSamplingPercentage=5, Percent=5)),
        f"{ROOT}.Conditions[0].ConditionParameters",
        "has unknown key 'Percent' for ConditionType 'Sampling'; allowed: RandomSamplingPercentage",
    ),
    (
        doc(leaf("Sampling")),
        f"{ROOT}.Conditions[0].ConditionParameters.RandomSamplingPercentage",
        "RandomSamplingPercentage is required for ConditionType 'Sampling'",
    ),
    (
        doc({"Or": [sampling(5), sampling(150)]}),
        f"{ROOT}.Conditions[0].Or[1].ConditionParameters.RandomSamplingPercentage",
        "HumanLoopActivationConditions.Conditions[0].Or[1].ConditionParameters.RandomSamplingPercentage "
        "must be between 0 and 100; got 150",
    ),
    (
        doc(sampling(-1)),
        f"{ROOT}.Conditions[0].ConditionParameters.RandomSamplingPercentage",
        "got -1",
    ),
    (
        doc(sampling(float("nan"))),
        f"{ROOT}.Conditions[0].ConditionParameters.RandomSamplingPercentage",
        "got nan",
    ),
    (
        doc(sampling(True)),
        f"{ROOT}.Conditions[0].ConditionParameters.RandomSamplingPercentage",
        "must be a number between 0 and 100; got True",
    ),
    (
        doc(sampling("5")),
        f"{ROOT}.Conditions[0].ConditionParameters.RandomSamplingPercentage",
        "must be a number between 0 and 100; got '5'",
    ),
    (
        doc(
            {
                "ConditionType": "Sampling",
                "ConditionParameters": {"RandomSamplingPercentage": 5},
                "And": [],
            }
        ),
        f"{ROOT}.Conditions[0]",
        "must have either ConditionType or And, not both",
    ),
    (
        doc({"And": [sampling(5)], "Or": [sampling(5)]}),
        f"{ROOT}.Conditions[0]",
        "must have only one of And, Or",
    ),
    (
        doc({"ConditionParameters": {}}),
        f"{ROOT}.Conditions[0]",
        "must have a ConditionType, And or Or",
    ),
    (
        doc({"And": []}),
        f"{ROOT}.Conditions[0].And",
        "Conditions[0].And must hold at least one condition; got []",
    ),
    (
        doc({"Or": []}),
        f"{ROOT}.Conditions[0].Or",
        "Conditions[0].Or must hold at least one condition; got []",
    ),
    (
        doc({"Or": sampling(5)}),
        f"{ROOT}.Conditions[0].Or",
        "must be a list of conditions",
    ),
    (
        doc({"Or": [sampling(5)], "Note": "x"}),
        f"{ROOT}.Conditions[0]",
        "has unknown key 'Note' next to Or",
    ),
    (
        doc({**sampling(5), "Comment": "x"}),
        f"{ROOT}.Conditions[0]",
        "has unknown key 'Comment'; allowed: ConditionParameters, ConditionType",
    ),
    (
        doc(deep(MAX_NESTING_DEPTH + 1)),
        f"{ROOT}.Conditions[0].And[0].Or[0].And",
        "nests And/Or 3 levels deep; at most 2 allowed",
    ),
    (
        doc(model(ConfidenceLessThan=50, ConfidenceLessThanEquals=60)),
        f"{ROOT}.Conditions[0].ConditionParameters",
        "may set only one of ConfidenceLessThan, ConfidenceLessThanEquals; got both",
    ),
    (
        doc(model(ConfidenceGreaterThan=50, ConfidenceGreaterThanEquals=60)),
        f"{ROOT}.Conditions[0].ConditionParameters",
        "may set only one of ConfidenceGreaterThan, ConfidenceGreaterThanEquals; got both",
    ),
    (
        doc(model(ConfidenceEquals=50, ConfidenceLessThan=60)),
        f"{ROOT}.Conditions[0].ConditionParameters",
        "may not combine ConfidenceEquals with ConfidenceLessThan",
    ),
    (
        doc(model(ConfidenceGreaterThan=80, ConfidenceLessThan=20)),
        f"{ROOT}.Conditions[0].ConditionParameters",
        "can never match",
    ),
    (
        doc(model(ConfidenceGreaterThan=50, ConfidenceLessThanEquals=50)),
        f"{ROOT}.Conditions[0].ConditionParameters",
        "can never match",
    ),
    (
        doc(model(LabelName="fraud")),
        f"{ROOT}.Conditions[0].ConditionParameters",
        "must set at least one of ConfidenceEquals, ConfidenceLessThan, ConfidenceLessThanEquals, "
        "ConfidenceGreaterThan, ConfidenceGreaterThanEquals; got none",
    ),
    (
        doc(model(LabelName=5, ConfidenceLessThan=50)),
        f"{ROOT}.Conditions[0].ConditionParameters.LabelName",
        "LabelName must be a non-empty string; got 5",
    ),
    (
        doc(model(LabelName="", ConfidenceLessThan=50)),
        f"{ROOT}.Conditions[0].ConditionParameters.LabelName",
        "must be a non-empty string; got ''",
    ),
    (
        doc(model(ConfidenceLessThan=101)),
        f"{ROOT}.Conditions[0].ConditionParameters.ConfidenceLessThan",
        "must be between 0 and 100; got 101",
    ),
    (
        doc(leaf("ModerationLabelConfidenceCheck", ConfidenceLessThan=50)),
        f"{ROOT}.Conditions[0].ConditionParameters.ModerationLabelName",
        "is required for ConditionType 'ModerationLabelConfidenceCheck'",
    ),
    (
        doc(
            leaf(
                "ModerationLabelConfidenceCheck",
                ModerationLabelName="Violence",
                LabelName="x",
                ConfidenceLessThan=5,
            )
        ),
        f"{ROOT}.Conditions[0].ConditionParameters",
        "has unknown key 'LabelName' for ConditionType 'ModerationLabelConfidenceCheck'",
    ),
    (
        doc(leaf("ImportantFormKeyConfidenceCheck", ImportantFormKey="Name")),
        f"{ROOT}.Conditions[0].ConditionParameters",
        "must set at least one of KeyValueBlockConfidenceEquals",
    ),
    (
        doc(
            leaf(
                "ImportantFormKeyConfidenceCheck",
                ImportantFormKey="Name",
                WordBlockConfidenceGreaterThan=120,
            )
        ),
        f"{ROOT}.Conditions[0].ConditionParameters.WordBlockConfidenceGreaterThan",
        "must be between 0 and 100; got 120",
    ),
    (
        doc(
            leaf(
                "MissingImportantFormKey",
                ImportantFormKey="Name",
                ImportantFormKeyAliases="Name:",
            )
        ),
        f"{ROOT}.Conditions[0].ConditionParameters.ImportantFormKeyAliases",
        "must be a list of strings; got 'Name:'",
    ),
    (
        doc(
            leaf(
                "MissingImportantFormKey",
                ImportantFormKey="Name",
                ImportantFormKeyAliases=["ok", 3],
            )
        ),
        f"{ROOT}.Conditions[0].ConditionParameters.ImportantFormKeyAliases[1]",
        "must be a non-empty string; got 3",
    ),
    (
        doc(leaf("MissingImportantFormKey", ImportantFormKey=None)),
        f"{ROOT}.Conditions[0].ConditionParameters.ImportantFormKey",
        "must be a non-empty string; got None",
    ),
]


@pytest.mark.parametrize(("document", "field", "message"), BAD_DOCUMENTS)
def test_invalid_documents_are_refused_with_the_field_named(
    document: Any, field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_conditions(document)

    assert caught.value.field == field
    assert message in caught.value.message
    assert caught.value.message.startswith(field + " ")


def test_error_messages_name_the_callers_field() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_conditions(doc(sampling(150)), field="flow.conditions")

    assert caught.value.message == (
        "flow.conditions.Conditions[0].ConditionParameters.RandomSamplingPercentage must be between 0 and 100; got 150"
    )


def test_long_invalid_values_are_shortened_in_messages() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_conditions("x" * 5000)

    assert len(caught.value.message) < 300


def test_equal_inclusive_bounds_are_a_valid_single_point() -> None:
    document = doc(model(ConfidenceGreaterThanEquals=50, ConfidenceLessThanEquals=50))

    assert run(document, Prediction("a", {"a": 0.5})).activated is True
    assert run(document, Prediction("a", {"a": 0.51})).activated is False


# --- And / Or / top-level OR ---------------------------------------------------

TRUE = model(ConfidenceLessThan=100)  # FRAUD's confidence is 62
FALSE = model(ConfidenceGreaterThan=99)


@pytest.mark.parametrize(
    ("nodes", "activated"),
    [
        ([FALSE], False),
        ([TRUE], True),
        ([FALSE, FALSE], False),
        ([FALSE, TRUE], True),
        ([TRUE, FALSE], True),
        ([{"And": [TRUE, TRUE]}], True),
        ([{"And": [TRUE, FALSE]}], False),
        ([{"And": [FALSE, FALSE]}], False),
        ([{"Or": [FALSE, TRUE]}], True),
        ([{"Or": [FALSE, FALSE]}], False),
        ([{"Or": [{"And": [TRUE, FALSE]}, {"And": [TRUE, TRUE]}]}], True),
        ([{"And": [{"Or": [FALSE, TRUE]}, {"Or": [FALSE, FALSE]}]}], False),
        ([{"And": [TRUE, FALSE]}, {"Or": [FALSE, TRUE]}], True),
    ],
)
def test_and_or_and_top_level_or_semantics(
    nodes: list[dict[str, Any]], activated: bool
) -> None:
    assert run(doc(*nodes)).activated is activated


def test_every_node_is_evaluated_even_when_the_outcome_is_already_known() -> None:
    results = run(doc({"And": [FALSE, TRUE]}, TRUE)).results

    assert results["Conditions"][0]["And"][1]["EvaluationResult"] is True
    assert results["Conditions"][1]["EvaluationResult"] is True


# --- the result tree -----------------------------------------------------------


def test_result_tree_has_a2i_shape_with_evaluation_result_on_every_node() -> None:
    document = doc(
        {"Or": [model(LabelName="fraud", ConfidenceLessThan=70), sampling(0)]}, FALSE
    )

    result = run(document)

    assert result.results == {
        "Conditions": [
            {
                "EvaluationResult": True,
                "Or": [
                    {
                        "ConditionType": "ModelConfidenceCheck",
                        "ConditionParameters": {
                            "LabelName": "fraud",
                            "ConfidenceLessThan": 70,
                        },
                        "EvaluationResult": True,
                    },
                    {
                        "ConditionType": "Sampling",
                        "ConditionParameters": {"RandomSamplingPercentage": 0},
                        "EvaluationResult": False,
                    },
                ],
            },
            {
                "ConditionType": "ModelConfidenceCheck",
                "ConditionParameters": {"ConfidenceGreaterThan": 99},
                "EvaluationResult": False,
            },
        ]
    }
    assert result.activated is True
    assert result.notes == ()


def test_result_tree_is_json_serialisable_and_keeps_parameter_values_exact() -> None:
    document = doc(model(ConfidenceLessThan=62.5), sampling(12.25))

    results = run(document).results

    assert json.loads(json.dumps(results)) == results
    assert results["Conditions"][0]["ConditionParameters"]["ConfidenceLessThan"] == 62.5
    assert isinstance(
        results["Conditions"][1]["ConditionParameters"]["RandomSamplingPercentage"],
        float,
    )


def test_changing_one_result_does_not_change_the_next() -> None:
    conditions = parse_conditions(doc(model(ConfidenceLessThan=70)))
    first = conditions.evaluate(prediction=FRAUD, sampling_key="k")
    first.results["Conditions"][0]["ConditionParameters"]["ConfidenceLessThan"] = 1

    second = conditions.evaluate(prediction=FRAUD, sampling_key="k")

    assert (
        second.results["Conditions"][0]["ConditionParameters"]["ConfidenceLessThan"]
        == 70
    )


# --- comparisons ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("comparison", "below", "at", "above"),
    [
        ("ConfidenceLessThan", True, False, False),
        ("ConfidenceLessThanEquals", True, True, False),
        ("ConfidenceGreaterThan", False, False, True),
        ("ConfidenceGreaterThanEquals", False, True, True),
        ("ConfidenceEquals", False, True, False),
    ],
)
@pytest.mark.parametrize("threshold", [0, 29, 50, 70, 85.5, 100])
def test_each_comparison_at_and_around_its_threshold(
    comparison: str, below: bool, at: bool, above: bool, threshold: float
) -> None:
    conditions = parse_conditions(doc(model(**{comparison: threshold})))

    def fires(probability: float) -> bool:
        prediction = Prediction("a", {"a": probability})
        return conditions.evaluate(prediction=prediction, sampling_key="k").activated

    assert fires(threshold / 100) is at
    if threshold > 0:
        assert fires(threshold / 100 - 1e-9) is below
    if threshold < 100:
        assert fires(threshold / 100 + 1e-9) is above


@pytest.mark.parametrize(
    ("probability", "threshold"), [(0.29, 29), (0.7, 70), (0.57, 57), (0.1, 10)]
)
def test_a_probability_written_as_the_threshold_is_not_below_it(
    probability: float, threshold: int
) -> None:
    # probability * 100 would give 28.999999999999996 for 0.29; users mean 29.
    assert (
        run(
            doc(model(ConfidenceLessThan=threshold)),
            Prediction("a", {"a": probability}),
        ).activated
        is False
    )
    assert (
        run(
            doc(model(ConfidenceEquals=threshold)), Prediction("a", {"a": probability})
        ).activated
        is True
    )


def test_two_bounds_on_one_node_form_a_range() -> None:
    document = doc(model(ConfidenceGreaterThan=40, ConfidenceLessThan=60))

    assert [
        run(document, Prediction("a", {"a": p})).activated
        for p in (0.3, 0.4, 0.5, 0.6, 0.7)
    ] == [
        False,
        False,
        True,
        False,
        False,
    ]


@settings(max_examples=300, deadline=None)
@given(
    probability=st.floats(min_value=0, max_value=1),
    threshold=st.one_of(st.integers(0, 100), st.floats(min_value=0, max_value=100)),
    comparison=st.sampled_from(
        [
            "ConfidenceLessThan",
            "ConfidenceLessThanEquals",
            "ConfidenceGreaterThan",
            "ConfidenceGreaterThanEquals",
            "ConfidenceEquals",
        ]
    ),
)
def test_confidence_checks_match_the_comparison_on_the_0_to_100_scale(
    probability: float, threshold: float, comparison: str
) -> None:
    expected = {
        "ConfidenceLessThan": probability < threshold / 100,
        "ConfidenceLessThanEquals": probability <= threshold / 100,
        "ConfidenceGreaterThan": probability > threshold / 100,
        "ConfidenceGreaterThanEquals": probability >= threshold / 100,
        "ConfidenceEquals": probability == threshold / 100,
    }[comparison]
    prediction = Prediction("a", {"a": probability, "b": 1 - probability})

    assert run(doc(model(**{comparison: threshold})), prediction).activated is expected


@settings(max_examples=200, deadline=None)
@given(probability=st.floats(min_value=0, max_value=1), threshold=st.integers(0, 100))
def test_confidence_less_than_fires_exactly_when_confidence_times_100_is_below_on_whole_thresholds(
    probability: float, threshold: int
) -> None:
    # For whole-number thresholds the two formulations only differ on values such
    # as 0.29 that the test above pins; away from them they must agree.
    if round(probability * 100, 9) == threshold:
        return
    prediction = Prediction("a", {"a": probability})

    assert run(doc(model(ConfidenceLessThan=threshold)), prediction).activated is (
        probability * 100 < threshold
    )


# --- labels --------------------------------------------------------------------


@pytest.mark.parametrize("label_parameters", [{}, {"LabelName": ANY_LABEL}])
def test_absent_or_star_label_checks_the_predicted_label(
    label_parameters: dict[str, str],
) -> None:
    document = doc(model(ConfidenceLessThan=70, **label_parameters))

    assert (
        run(document, Prediction("fraud", {"fraud": 0.62, "legit": 0.38})).activated
        is True
    )
    assert (
        run(document, Prediction("legit", {"fraud": 0.2, "legit": 0.8})).activated
        is False
    )


def test_named_label_checks_that_class_whatever_the_prediction() -> None:
    document = doc(model(LabelName="fraud", ConfidenceGreaterThanEquals=30))

    assert (
        run(document, Prediction("legit", {"fraud": 0.35, "legit": 0.65})).activated
        is True
    )
    assert (
        run(document, Prediction("legit", {"fraud": 0.1, "legit": 0.9})).activated
        is False
    )


def test_named_label_the_model_does_not_know_is_false_with_a_note() -> None:
    result = run(doc(model(LabelName="spam", ConfidenceLessThan=100)))

    assert result.activated is False
    assert result.notes == (
        "Conditions[0] (ModelConfidenceCheck) evaluated to false: the prediction has no class 'spam'",
    )


def test_model_confidence_check_without_a_prediction_is_false_with_a_note() -> None:
    result = run(
        doc({"Or": [sampling(0), model(ConfidenceLessThan=100)]}), prediction=None
    )

    assert result.activated is False
    assert result.results["Conditions"][0]["Or"][1]["EvaluationResult"] is False
    assert result.notes == (
        "Conditions[0].Or[1] (ModelConfidenceCheck) evaluated to false: no prediction was given",
    )


def test_moderation_label_check_treats_the_moderation_label_as_a_class() -> None:
    probabilities = {"Violence": 0.55, "Safe": 0.45}
    named = doc(
        leaf(
            "ModerationLabelConfidenceCheck",
            ModerationLabelName="Violence",
            ConfidenceLessThan=60,
        )
    )
    any_label = doc(
        leaf(
            "ModerationLabelConfidenceCheck",
            ModerationLabelName="*",
            ConfidenceGreaterThan=90,
        )
    )

    assert run(named, Prediction("Safe", probabilities)).activated is True
    assert run(any_label, Prediction("Violence", probabilities)).activated is False
    assert (
        run(any_label, Prediction("Safe", {"Violence": 0.05, "Safe": 0.95})).activated
        is True
    )


@pytest.mark.parametrize(
    "node",
    [
        leaf("MissingImportantFormKey", ImportantFormKey="Name"),
        leaf(
            "ImportantFormKeyConfidenceCheck",
            ImportantFormKey="*",
            KeyValueBlockConfidenceLessThan=100,
        ),
    ],
)
def test_textract_conditions_are_stored_but_evaluate_to_false_with_a_note(
    node: dict[str, Any],
) -> None:
    result = run(doc(node, sampling(100)))

    assert result.activated is True
    assert result.results["Conditions"][0]["EvaluationResult"] is False
    assert (
        result.results["Conditions"][0]["ConditionParameters"]
        == node["ConditionParameters"]
    )
    assert len(result.notes) == 1
    assert "needs a Textract AnalyzeDocument response" in result.notes[0]


# --- sampling ------------------------------------------------------------------


def test_sampling_is_the_same_for_the_same_key() -> None:
    conditions = parse_conditions(doc(sampling(50)))
    keys = seeded_keys(500)

    first = [
        conditions.evaluate(prediction=None, sampling_key=k).activated for k in keys
    ]
    again = [
        parse_conditions(doc(sampling(50)))
        .evaluate(prediction=FRAUD, sampling_key=k)
        .activated
        for k in keys
    ]

    assert first == again
    assert 0 < sum(first) < len(keys)


def test_sampling_decisions_are_stable_across_releases() -> None:
    # Changing the hash would re-route inputs that were already sampled.
    conditions = parse_conditions(doc(sampling(50)))

    pattern = "".join(
        "1"
        if conditions.evaluate(prediction=None, sampling_key=f"key-{i}").activated
        else "0"
        for i in range(24)
    )

    assert pattern == PINNED_PATTERN


PINNED_PATTERN = "011000110111001100110110"


@pytest.mark.parametrize("percentage", [0, 100])
def test_sampling_at_0_never_fires_and_at_100_always_fires(percentage: int) -> None:
    conditions = parse_conditions(doc(sampling(percentage)))

    outcomes = {
        conditions.evaluate(prediction=None, sampling_key=k).activated
        for k in seeded_keys(2000)
    }

    assert outcomes == {percentage == 100}


@pytest.mark.parametrize("percentage", [1, 5, 12.5, 50, 90])
def test_sampling_hits_its_percentage_over_many_keys(percentage: float) -> None:
    conditions = parse_conditions(doc(sampling(percentage)))
    keys = seeded_keys()

    hits = sum(
        conditions.evaluate(prediction=None, sampling_key=k).activated for k in keys
    )

    assert abs(100 * hits / len(keys) - percentage) <= 1.5


@pytest.mark.parametrize(("operator", "expected"), [("And", 25.0), ("Or", 75.0)])
def test_sampling_nodes_of_one_tree_are_independent(
    operator: str, expected: float
) -> None:
    conditions = parse_conditions(doc({operator: [sampling(50), sampling(50)]}))
    keys = seeded_keys()

    hits = sum(
        conditions.evaluate(prediction=None, sampling_key=k).activated for k in keys
    )

    assert abs(100 * hits / len(keys) - expected) <= 1.5


def test_sampling_after_a_confidence_check_samples_only_that_share() -> None:
    conditions = parse_conditions(
        doc({"And": [model(ConfidenceLessThan=70), sampling(20)]})
    )
    keys = seeded_keys()

    low = sum(
        conditions.evaluate(prediction=FRAUD, sampling_key=k).activated for k in keys
    )
    high = sum(
        conditions.evaluate(
            prediction=Prediction("a", {"a": 0.9}), sampling_key=k
        ).activated
        for k in keys
    )

    assert abs(100 * low / len(keys) - 20) <= 1.5
    assert high == 0


# --- random trees --------------------------------------------------------------

LEAVES = st.one_of(
    st.builds(sampling, st.sampled_from([0, 10, 50, 100])),
    st.builds(lambda t: model(ConfidenceLessThan=t), st.integers(0, 100)),
    st.builds(
        lambda t: model(LabelName="b", ConfidenceGreaterThanEquals=t),
        st.integers(0, 100),
    ),
    st.just(leaf("MissingImportantFormKey", ImportantFormKey="Name")),
)


def groups(
    children: st.SearchStrategy[dict[str, Any]],
) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda op, nodes: {op: nodes},
        st.sampled_from(["And", "Or"]),
        st.lists(children, min_size=1, max_size=3),
    )


NODES = st.one_of(LEAVES, groups(LEAVES), groups(st.one_of(LEAVES, groups(LEAVES))))


def check_node(node: dict[str, Any]) -> bool:
    outcome = node["EvaluationResult"]
    assert isinstance(outcome, bool)
    if "And" in node:
        assert outcome == all(check_node(child) for child in node["And"])
    elif "Or" in node:
        assert outcome == any(check_node(child) for child in node["Or"])
    return bool(outcome)


@settings(max_examples=200, deadline=None)
@given(
    nodes=st.lists(NODES, min_size=1, max_size=4),
    probability=st.floats(min_value=0, max_value=1),
    key=st.text(max_size=20),
)
def test_random_trees_evaluate_consistently_and_echo_the_document(
    nodes: list[dict[str, Any]], probability: float, key: str
) -> None:
    document = doc(*nodes)
    conditions = parse_conditions(json.dumps(document))
    prediction = Prediction("a", {"a": probability, "b": 1 - probability})

    result = conditions.evaluate(prediction=prediction, sampling_key=key)

    assert strip_results(result.results) == document
    assert result.activated == any(
        check_node(node) for node in result.results["Conditions"]
    )
    assert result == conditions.evaluate(prediction=prediction, sampling_key=key)
