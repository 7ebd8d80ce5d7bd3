"""Unit tests for templates, JSONPath and name matching (reference §2, §3, §4)."""

from __future__ import annotations

import json

import pytest

from naftiko.expressions.jsonpath import JsonPath, JsonPathError, is_jsonpath
from naftiko.expressions.names import find_name, normalise
from naftiko.expressions.template import (
    MISSING,
    MissingValue,
    Scope,
    Template,
    TemplateError,
    to_json_fragment,
    to_text,
)

DOC = {
    "a": {"b": [1, 2, 3]},
    "items": [{"id": 1, "price": 5}, {"id": 2, "price": 15}, {"id": 3, "price": 25}],
    "name": "n",
    "empty": [],
}


# ------------------------------------------------------------------ JSONPath


@pytest.mark.parametrize("expr", ["$", "$.", " $ ", "{{$}}", "{{ $. }}"])
def test_jsonpath_whole_document(expr):
    path = JsonPath(expr)
    assert path.is_whole_document
    assert path.find(DOC) is DOC


def test_jsonpath_in_mustache_equals_plain():
    assert JsonPath("{{$.name}}").find(DOC) == JsonPath("$.name").find(DOC) == "n"
    assert JsonPath("{{ $.a.b }}").find(DOC) == [1, 2, 3]


def test_jsonpath_single_match_is_a_value_not_a_list():
    assert JsonPath("$.items[0].id").find(DOC) == 1
    assert JsonPath("$.a").find(DOC) == {"b": [1, 2, 3]}


@pytest.mark.parametrize(
    "expr, expected",
    [("$.a.b.length()", 3), ("$.items.length()", 3), ("$.empty.length()", 0), ("$.nope.length()", 0)],
)
def test_jsonpath_length(expr, expected):
    path = JsonPath(expr)
    assert not path.is_whole_document
    assert path.find(DOC) == expected


def test_jsonpath_wildcard_and_recursive_descent_give_lists():
    assert JsonPath("$.items[*].id").find(DOC) == [1, 2, 3]
    assert JsonPath("$..id").find(DOC) == [1, 2, 3]
    # a multi-select that matches once is still a list
    assert JsonPath("$.a.b[*]").find({"a": {"b": [9]}}) == [9]
    assert JsonPath("$.items[*].id").find({"items": []}) == []


def test_jsonpath_filter():
    assert JsonPath("$.items[?(@.price > 10)].id").find(DOC) == [2, 3]
    assert JsonPath("$.items[?(@.price > 100)].id").find(DOC) == []


@pytest.mark.parametrize("expr", ["$.nope", "$.a.nope.deep", "$.items[7].id", "$.name.x"])
def test_jsonpath_missing_path_is_none(expr):
    assert JsonPath(expr).find(DOC) is None


def test_jsonpath_on_non_container_document():
    assert JsonPath("$.x").find("plain text") is None
    assert JsonPath("$").find(None) is None


@pytest.mark.parametrize("bad", ["a.b", "x", "$.[", "$..["])
def test_invalid_jsonpath_raises_at_compile_time(bad):
    with pytest.raises(JsonPathError):
        JsonPath(bad)


def test_is_jsonpath():
    assert is_jsonpath("$.x") and is_jsonpath("$") and is_jsonpath("{{$.x}}")
    assert not is_jsonpath("x") and not is_jsonpath("{{x}}") and not is_jsonpath(3) and not is_jsonpath(None)


# ------------------------------------------------------------------ to_text / to_json_fragment


@pytest.mark.parametrize(
    "value, text",
    [(None, ""), (MISSING, ""), (True, "true"), (False, "false"), ("s", "s"), (3, "3"), (1.5, "1.5"),
     ([1, "a"], '[1,"a"]'), ({"k": "v"}, '{"k":"v"}')],
)
def test_to_text(value, text):
    assert to_text(value) == text


def test_to_json_fragment_escapes_strings_and_serialises_values():
    assert to_json_fragment('say "hi"\n') == 'say \\"hi\\"\\n'
    assert to_json_fragment(3) == "3"
    assert to_json_fragment(True) == "true"
    assert to_json_fragment([1, "a"]) == '[1,"a"]'
    assert to_json_fragment(None) == ""


# ------------------------------------------------------------------ templates

SCOPE = Scope(
    {"name": "Bob", "n": 3, "flag": True, "lst": [1, "a"], "obj": {"k": "v"}, "step": {"field": "F"}, "q": 'say "hi"\n'},
    aliases=frozenset({"rest"}),
    binds={"env": {"TOKEN": "t0k"}},
)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("Hello {{name}}", "Hello Bob"),
        ("{{ name }}", "Bob"),
        ("{{step.field}}", "F"),
        ("{{env.TOKEN}}", "t0k"),
        ("{{TOKEN}}", "t0k"),
        ("{{rest.name}}", "Bob"),
        ("{{missing}}!", "!"),
        ("{{step.nope}}|", "|"),
        ("{{lst}}", '[1,"a"]'),
        ("{{obj}}", '{"k":"v"}'),
        ("{{flag}}", "true"),
        ("{{n}}", "3"),
        ("{{{name}}}", "Bob"),
        ("{{&name}}", "Bob"),
        ("{{! a comment }}x", "x"),
        ("{{#lst}}[{{.}}]{{/lst}}", "[1][a]"),
        ("{{#obj}}{{k}}{{/obj}}", "v"),
        ("{{#flag}}yes{{/flag}}", "yes"),
        ("{{^missing}}none{{/missing}}", "none"),
        ("{{^name}}none{{/name}}", ""),
        ("no tags", "no tags"),
        ("", ""),
    ],
)
def test_template_render(source, expected):
    assert Template(source).render(SCOPE) == expected


def test_template_in_json_body_escapes_values():
    rendered = Template('{"q": "{{q}}", "l": {{lst}}, "end": 1}').render(SCOPE, to_json_fragment)
    assert json.loads(rendered) == {"q": 'say "hi"\n', "l": [1, "a"], "end": 1}


def test_template_variable_followed_by_a_closing_brace_keeps_the_brace():
    """Regression (fixed in d4e2894): the tag regex used to end with ``\\}?\\}\\}`` and swallowed
    a ``}`` following a plain ``{{x}}``, so ``{"id": {{id}}}`` rendered as ``{"id": 5``."""
    scope = Scope({"id": 5, "name": "x"})
    assert Template('{"id": {{id}}}').render(scope, to_json_fragment) == '{"id": 5}'
    assert Template("{{name}}}").render(scope) == "x}"


def test_template_jsonpath_variable_uses_the_scope_document():
    assert Template("{{$.a.b}}").render(Scope(document=DOC)) == "[1,2,3]"
    assert Template("{{$.a.b}}").render(Scope({"a": {"b": 4}})) == "4"


def test_template_single_var_and_constant():
    assert Template("{{name}}").single_var.path == ("name",)
    assert Template("a{{name}}").single_var is None
    assert Template("plain").constant and not Template("{{x}}").constant


def test_template_strict_missing_raises_missing_value():
    with pytest.raises(MissingValue) as info:
        Template("/x/{{missing}}").render(SCOPE, strict=True)
    assert info.value.name == "missing"
    assert Template("/x/{{name}}").render(SCOPE, strict=True) == "/x/Bob"


def test_template_bind_prerenders_only_binds():
    t = Template("Bearer {{TOKEN}} {{other}}").bind({"env": {"TOKEN": "t"}})
    assert not t.constant
    assert t.render(Scope({"other": "o"})) == "Bearer t o"
    full = Template("{{env.TOKEN}}-{{TOKEN}}").bind({"env": {"TOKEN": "t"}})
    assert full.constant and full.render_constant() == "t-t"


@pytest.mark.parametrize("bad", ["{{#a}}x", "{{/a}}", "{{#a}}x{{/b}}", "{{}}"])
def test_template_syntax_errors(bad):
    with pytest.raises(TemplateError):
        Template(bad)


def test_scope_lookup_binds_before_inputs():
    """Binds resolve in their own namespace: an input named like a bind variable or a bind
    namespace never replaces it; the input stays reachable through the adapter alias."""
    scope = Scope({"TOKEN": "input", "env": {"TOKEN": "mine"}}, aliases=frozenset({"rest"}), binds={"env": {"TOKEN": "bind"}})
    assert Template("{{TOKEN}}|{{env.TOKEN}}|{{rest.TOKEN}}").render(scope) == "bind|bind|input"


def test_scope_alias_uses_exact_input_names():
    """Tolerant spellings are bound at load (engine.binding), never guessed per request."""
    scope = Scope({"customer-id": "c1", "$top": 5, "a.b": 1}, aliases=frozenset({"tools"}))
    assert Template("{{tools.customer-id}}|{{tools.customer_id}}|{{tools.$top}}|{{$top}}|{{tools.a.b}}").render(scope) == "c1||5|5|1"


# ------------------------------------------------------------------ names


def test_find_name_exact_wins():
    assert find_name({"org-id": 1, "org_id": 2}, "org_id") == "org_id"


@pytest.mark.parametrize(
    "available, wanted, key",
    [
        ({"customer_id": 1}, "customer-id", "customer_id"),
        ({"customer-id": 1}, "customer_id", "customer-id"),
        ({"orgId": 1}, "orgid", "orgId"),
        ({"orgid": 1}, "orgId", "orgid"),
        (["A_B"], "ab", "A_B"),
    ],
)
def test_find_name_normalised(available, wanted, key):
    assert find_name(available, wanted) == key


def test_find_name_ambiguous_or_absent_is_none():
    assert find_name({"org-id": 1, "org_id": 2}, "orgId") is None
    assert find_name({}, "x") is None
    assert find_name({"a": 1}, "b") is None


def test_normalise():
    assert normalise("Customer-Id_X") == "customeridx"
