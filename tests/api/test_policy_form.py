"""The policy form's controls are described from QualityPolicy's schema: every field has a control or
is named as edited in the JSON, and every control's path and bounds are the policy's own."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from truthset.schemas import QualityPolicy
from truthset.ui._policy_form import policy_controls


def _leaves(controls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for control in controls:
        out.extend(_leaves(control["children"]) if control["kind"] == "group" else [control])
    return out


def test_every_policy_field_is_a_control_or_named_as_json_only() -> None:
    described = policy_controls()
    top = {control["path"][0] for control in described["controls"]}
    assert top | set(described["json_only"]) | set(described["shorthands"]) == set(QualityPolicy.model_fields)
    assert {"deciding", "questions"} <= set(described["json_only"])


def test_each_control_sets_a_value_the_policy_accepts_within_its_bounds() -> None:
    for control in _leaves(policy_controls()["controls"]):
        path = control["path"]
        if control["kind"] in ("integer", "number"):
            low = control.get("minimum", control.get("exclusiveMinimum"))
            high = control.get("maximum", control.get("exclusiveMaximum"))
            inside = (low + high) / 2 if control["kind"] == "number" else int(low if "minimum" in control else low + 1)
            QualityPolicy(**_nested(path, inside), **_overlap_for(path))
            if high is not None:
                with pytest.raises(ValidationError) as refused:
                    QualityPolicy(**_nested(path, high + 1))
                assert path[-1] in str(refused.value)
        elif control["kind"] == "choice":
            for choice in control["choices"]:
                QualityPolicy(**_nested(path, choice), **_overlap_for(path))


def test_a_group_that_may_be_off_starts_from_a_valid_default() -> None:
    for control in policy_controls()["controls"]:
        if control["kind"] == "group" and control["nullable"]:
            QualityPolicy(**{control["path"][0]: control["default"]})


def _nested(path: list[str], value: Any) -> dict[str, Any]:
    for key in reversed(path):
        value = {key: value}
    return value


def _overlap_for(path: list[str]) -> dict[str, Any]:
    # a target confidence or a max overlap above min needs the other (the policy's own rule)
    if path == ["target_confidence"]:
        return {"max_overlap": 3}
    if path == ["max_overlap"]:
        return {"target_confidence": 0.9}
    return {}
