"""Unit tests for output shaping (reference §4)."""

from __future__ import annotations

import copy

import pytest

from naftiko.document.model import OutputParameter
from naftiko.engine.shaping import compile_output, compile_outputs, is_passthrough
from naftiko.expressions.jsonpath import JsonPathError

DOC = {
    "data": {
        "id": 7,
        "name": "Widget",
        "long": "abcdefghij",
        "count": "12",
        "active": "true",
        "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": "2"}],
    },
    "meta": None,
}


def O(**kw) -> OutputParameter:  # noqa: E743  # reads as the O of a JSON object literal
    return OutputParameter.model_validate(kw)


def shape(*params: dict, doc=DOC):
    return compile_outputs([OutputParameter.model_validate(p) for p in params])(doc)


# ------------------------------------------------------------------ pass-through


@pytest.mark.parametrize("mapping", ["$.", "$"])
def test_unnamed_object_mapping_whole_document_passes_through(mapping):
    params = [O(type="object", mapping=mapping)]
    assert compile_outputs(params)(DOC) is DOC
    assert is_passthrough(params)


def test_no_outputs_is_identity_and_passthrough():
    assert compile_outputs([])(DOC) is DOC
    assert is_passthrough([])


def test_object_mapping_without_properties_passes_the_node_unchanged():
    assert shape({"type": "object", "mapping": "$.data"}) == DOC["data"]
    assert shape({"type": "array", "mapping": "$.data.items"}) == DOC["data"]["items"]


@pytest.mark.parametrize(
    "params",
    [
        [{"name": "r", "type": "object", "mapping": "$."}],  # named → wrapped
        [{"type": "object", "mapping": "$.data"}],  # not the whole document
        [{"type": "object", "mapping": "$", "properties": {"a": {"mapping": "$.a"}}}],
        [{"type": "object", "mapping": "$."}, {"name": "x", "mapping": "$.meta"}],
        [{"type": "string", "mapping": "$."}],
        [{"const": "c"}],
        [{"type": "integer", "mapping": "$.length()"}],
    ],
)
def test_is_not_passthrough(params):
    assert not is_passthrough([OutputParameter.model_validate(p) for p in params])


# ------------------------------------------------------------------ named outputs


def test_named_outputs_form_an_object_keyed_by_name():
    out = shape(
        {"name": "id", "type": "integer", "mapping": "$.data.id"},
        {"name": "nm", "type": "string", "mapping": "$.data.name"},
        {"name": "gone", "type": "string", "mapping": "$.nope"},
    )
    assert out == {"id": 7, "nm": "Widget", "gone": None}


def test_single_named_output_is_still_keyed():
    assert shape({"name": "nm", "type": "string", "mapping": "$.data.name"}) == {"nm": "Widget"}


def test_single_unnamed_output_is_the_whole_result():
    assert shape({"type": "string", "mapping": "$.data.name"}) == "Widget"


# ------------------------------------------------------------------ object and array


def test_object_properties_are_relative_to_the_mapping():
    out = shape(
        {
            "type": "object",
            "mapping": "$.data",
            "properties": {
                "ident": {"type": "string", "mapping": "$.id"},
                "n": {"type": "integer", "mapping": "$.count"},
                "inner": {"type": "object", "mapping": "$.items[0]", "properties": {"s": {"mapping": "$.sku"}}},
            },
        }
    )
    assert out == {"ident": "7", "n": 12, "inner": {"s": "a"}}


def test_object_properties_without_mapping_use_the_current_node():
    out = shape({"type": "object", "properties": {"meta": {"mapping": "$.meta"}, "nm": {"type": "string", "mapping": "$.data.name"}}})
    assert out == {"meta": None, "nm": "Widget"}


def test_array_items_are_evaluated_per_element():
    out = shape(
        {
            "type": "array",
            "mapping": "$.data.items",
            "items": {
                "type": "object",
                "properties": {"s": {"type": "string", "mapping": "$.sku"}, "q": {"type": "integer", "mapping": "$.qty"}},
            },
        }
    )
    assert out == [{"s": "a", "q": 1}, {"s": "b", "q": 2}]


def test_array_items_scalar_per_element():
    fn = compile_output(O(type="array", items={"type": "string", "mapping": "$.sku"}))
    assert fn([{"sku": "a"}, {"sku": 1}, {}]) == ["a", "1", None]


def test_array_over_a_single_object_wraps_it():
    out = shape({"type": "array", "mapping": "$.data", "items": {"type": "string", "mapping": "$.name"}})
    assert out == ["Widget"]


def test_array_mapping_with_wildcard():
    assert shape({"type": "array", "mapping": "$.data.items[*].sku"}) == ["a", "b"]


@pytest.mark.parametrize(
    "param",
    [
        {"type": "object", "mapping": "$.missing", "properties": {"a": {"mapping": "$.a"}}},
        {"type": "array", "mapping": "$.missing", "items": {"mapping": "$.a"}},
        {"type": "object", "mapping": "$.missing.deep"},
        {"type": "string", "mapping": "$.data.nope"},
    ],
)
def test_missing_path_is_none(param):
    assert shape(param) is None


# ------------------------------------------------------------------ scalars


def test_max_length_truncates_strings():
    assert shape({"type": "string", "mapping": "$.data.long", "maxLength": 3}) == "abc"
    assert shape({"mapping": "$.data.long", "maxLength": 4}) == "abcd"
    assert shape({"type": "string", "mapping": "$.data.name", "maxLength": 100}) == "Widget"


def test_const_ignores_the_document():
    assert shape({"name": "kind", "type": "string", "const": "widget"}, {"name": "id", "mapping": "$.data.id"}) == {
        "kind": "widget",
        "id": 7,
    }
    assert compile_output(O(const=0))(None) == 0


@pytest.mark.parametrize(
    "param, expected",
    [
        ({"type": "integer", "mapping": "$.data.count"}, 12),
        ({"type": "number", "mapping": "$.data.count"}, 12),
        ({"type": "boolean", "mapping": "$.data.active"}, True),
        ({"type": "string", "mapping": "$.data.id"}, "7"),
        ({"type": "integer", "mapping": "$.data.name"}, "Widget"),  # not coercible: unchanged
        ({"type": "integer", "mapping": "$.data.items.length()"}, 2),
    ],
)
def test_scalar_types_are_coerced(param, expected):
    assert shape(param) == expected


def test_consumed_value_is_a_jsonpath_mapping():
    assert shape({"name": "nm", "type": "string", "value": "$.data.name"}) == {"nm": "Widget"}
    assert shape({"name": "result", "type": "object", "value": "$."}) == {"result": DOC}
    assert shape({"name": "n", "type": "integer", "value": "{{$.data.count}}"}) == {"n": 12}


def test_shaping_does_not_mutate_the_document():
    before = copy.deepcopy(DOC)
    shape({"type": "array", "mapping": "$.data.items", "items": {"type": "object", "properties": {"q": {"type": "integer", "mapping": "$.qty"}}}})
    assert DOC == before


def test_invalid_mapping_fails_at_compile_time():
    with pytest.raises(JsonPathError):
        compile_outputs([O(name="x", mapping="$.[")])
