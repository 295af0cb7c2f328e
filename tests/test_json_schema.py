"""JSON Schema converter at the string level: each schema's grammar is checked with the reference recogniser
(``test_json_schema_support.Recognizer``) against instances whose validity ``jsonschema`` or the schema's
plain meaning decides. Token-level checks through the engine are in ``test_json_schema_tokens.py``."""

from __future__ import annotations

import json
import random
import warnings
from decimal import Decimal
from typing import Any

import pytest
from test_json_schema_support import Recognizer

from constrain.errors import SchemaError
from constrain.json_schema import SchemaRelaxedWarning, schema_to_grammar


def compact(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


class Raw(str):
    """Text passed to the recogniser as it is (not serialised)."""


def check(schema: Any, good: list[Any], bad: list[Any], **options: Any) -> Recognizer:
    r = Recognizer(schema_to_grammar(schema, **options))
    for x in good:
        text = x if isinstance(x, Raw) else compact(x)
        assert r.accepts(text), f"valid instance rejected: {text!r}"
    for x in bad:
        text = x if isinstance(x, Raw) else compact(x)
        assert not r.accepts(text), f"invalid instance accepted: {text!r}"
    return r


# ---------------------------------------------------------------- numbers
def test_integer_and_number_syntax() -> None:
    check({"type": "integer"}, [0, -7, 123456789012345678901234567890, Raw("-0"), Raw("5.0"), Raw("1e5")],
          [Raw("01"), Raw("1.5"), Raw("+1"), Raw(".5"), Raw("1."), "1", Raw("1e-5")])
    check({"type": "number"}, [0, -0.5, 1.25e-7, Raw("1E+5"), Raw("-0.0")], [Raw("01.5"), Raw("1.e5"), Raw("NaN")])


@pytest.mark.parametrize("integer", [False, True])
def test_numeric_ranges_exact(integer: bool) -> None:
    """Bounds are exact: every spelling in a grid of decimals is checked against Decimal arithmetic."""
    rng = random.Random(1)
    spellings = {str(i) for i in range(-60, 61)} | {"-0", "0.0", "-0.0", "10.000", "2.50", "0.05", "-3.125"}
    for _ in range(300):
        spellings.add(f"{rng.choice(['', '-'])}{rng.randint(0, 60)}.{rng.randint(0, 999):0{rng.randint(1, 3)}d}")
    bounds = [None, Decimal(0), Decimal("2.5"), Decimal(-3), Decimal("-0.05"), Decimal(10), Decimal("49.999")]
    for lo in bounds:
        for hi in bounds:
            for excl in (False, True):
                schema: dict[str, Any] = {"type": "integer" if integer else "number"}
                if lo is not None:
                    schema["exclusiveMinimum" if excl else "minimum"] = float(lo)
                if hi is not None:
                    schema["maximum"] = float(hi)
                if lo is None and hi is None:
                    continue
                try:
                    r: Recognizer | None = Recognizer(schema_to_grammar(schema))
                except SchemaError:
                    r = None  # an empty range
                for s in spellings:
                    v = Decimal(s)
                    ok = (lo is None or v > lo or (v == lo and not excl)) and (hi is None or v <= hi)
                    if integer:
                        ok = ok and v == int(v)
                    assert (r is not None and r.accepts(s)) == ok, (schema, s)


def test_multiple_of() -> None:
    check({"type": "integer", "multipleOf": 7, "minimum": -20, "maximum": 50},
          [-14, 0, 7, 49, Raw("14.0")], [-21, 1, 56, 3.5])
    check({"type": "number", "multipleOf": 0.01}, [0.07, 19.99, 100, Raw("1.10")], [0.001, Raw("0.015")])
    check({"type": "number", "multipleOf": 2.5}, [5, 7.5, -2.5], [1, 2.4])
    # every integer is a multiple of 0.5: exponents stay allowed
    check({"type": "integer", "multipleOf": 0.5}, [Raw("1e308"), 3], [1.5])


def test_const_and_enum_numbers_by_value() -> None:
    check({"enum": [1, 2.5, "a"]}, [1, Raw("1.0"), 2.5, Raw("2.50"), "a"], [Raw("1.5"), True, "b"])
    check({"const": 1e308}, [Raw("1e+308")], [Raw("1e307")])


# ---------------------------------------------------------------- strings
def test_string_escapes_are_canonical() -> None:
    texts = ['plain', 'quote " and \\ backslash', "controls \b\f\n\r\t\x00\x1f\x7f", "é 中 😀", "/slash"]
    check({"type": "string"}, texts, [Raw('"\\/"'), Raw('"\\u0041"'), Raw('"\n"'), Raw('"\\x"')])


def test_lengths_count_code_points() -> None:
    check({"type": "string", "minLength": 2, "maxLength": 3}, ["ab", "😀😀", "a\n", '""\\'],
          ["a", "😀", "abcd"])
    # bounds up to LONG_STRING are one DFA; longer ones are counted in chunks by the grammar
    check({"type": "string", "minLength": 70, "maxLength": 200}, ["x" * 70, "é" * 133, "y" * 200],
          ["x" * 69, "z" * 201])
    check({"type": "string", "minLength": 270, "maxLength": 400}, ["x" * 270, "é" * 333, "y" * 400],
          ["x" * 269, "z" * 401])
    check({"type": "string", "maxLength": 32767}, ["", "a" * 1000], [])


def test_pattern_is_an_ecma_search() -> None:
    check({"type": "string", "pattern": "[0-9]"}, ["a1", "9"], ["abc", ""])
    check({"type": "string", "pattern": "^a\\d+$"}, ["a1", "a123"], ["a", "ba1", "a1\n", "a١"])  # \d is ASCII
    check({"type": "string", "pattern": "^\\w+$"}, ["abc_1"], ["é"])
    check({"type": "string", "pattern": "^.$"}, ["a", "😀"], ["\n", "ab"])
    check({"type": "string", "pattern": "^a|b$"}, ["ax", "xb"], ["xa", "bx"])
    check({"type": "string", "pattern": "^\\p{Lu}"}, ["Éa"], ["éa"])
    check({"type": "string", "pattern": '"'}, ['say "hi"'], ["no quotes"])
    check({"type": "string", "pattern": "\\n"}, ["a\nb"], ["ab"])


@pytest.mark.parametrize("fmt,good,bad", [
    ("date", ["2024-02-29", "2000-02-29", "1999-12-31"], ["2023-02-29", "1900-02-29", "2024-13-01", "2024-1-01"]),
    ("time", ["08:30:06Z", "23:59:60Z", "08:30:06.25+05:30"], ["24:00:00Z", "08:30:06", "22:59:60Z"]),
    ("date-time", ["1963-06-19T08:30:06.283185Z", "1963-06-19t08:30:06z"], ["1963-06-19 08:30:06Z"]),
    ("duration", ["P4DT12H30M5S", "P2W", "PT0S"], ["P", "PT", "P1Y2W", "PT1D"]),
    ("email", ["a.b@example.com", '"a b"@x.org', "x@[127.0.0.1]"], ["a..b@x.com", "@x.com", "a@"]),
    ("uuid", ["2eb8aa08-AA98-11ea-b4aa-73b441d16380"], ["2eb8aa08-aa98-11ea-b4aa-73b441d1638"]),
    ("ipv4", ["192.168.0.1"], ["256.1.1.1", "01.1.1.1", "1.1.1"]),
    ("ipv6", ["::1", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4"], ["1::2::3", "12345::", "1:2:3:4:5:6:7"]),
    ("hostname", ["www.example.com", "a--b.com"], ["-a.com", "a_b.com", "xn--bad", "a" * 64 + ".com"]),
    ("uri", ["http://foo.bar/?q=1#x", "urn:isbn:0451450523"], ["//foo.bar", "/abc", "http://a b"]),
])
def test_formats(fmt: str, good: list[str], bad: list[str]) -> None:
    check({"type": "string", "format": fmt}, good, bad)


def test_string_constraints_combine() -> None:
    check({"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 4}, ["ab", "abcd"],
          ["a", "abcde", "AB"])
    check({"allOf": [{"pattern": "a"}, {"pattern": "b"}], "type": "string"}, ["ab", "ba"], ["aa", "bb"])
    check({"type": "string", "not": {"enum": ["x", "y"]}}, ["z", ""], ["x", "y"])
    check({"enum": ["red", "green"], "minLength": 4}, ["green"], ["red"])


# ---------------------------------------------------------------- objects
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}, "tags": {"type": "array"}},
    "required": ["name"],
}


def test_object_properties_in_schema_order() -> None:
    check(PERSON, [{"name": "a"}, {"name": "a", "age": 3}, {"name": "a", "tags": []}, {"name": "a", "extra": 1}],
          [{}, {"age": 3}, {"name": 1}, {"name": "a", "age": -1}, {"age": 3, "name": "a"},
           Raw('{"name":"a","name":"b"}'), Raw('{"name":"a","extra":1,"age":2}')])


def test_any_order() -> None:
    check(PERSON, [{"age": 3, "name": "a"}, {"tags": [], "name": "b", "age": 1}],
          [{"age": 3}, Raw('{"name":"a","age":1,"age":2}')], any_order=True)
    # other keys may come before, between and after the named ones, also with a single named property
    one = {"type": "object", "properties": {"token": {"type": "string"}}, "required": ["token"]}
    check(one, [{"name": "x", "token": "t"}, {"token": "t", "name": "x"}, {"a": 1, "token": "t", "b": 2}],
          [{"name": "x"}, Raw('{"token":"t","token":"u"}')], any_order=True)
    check(one, [{"token": "t", "name": "x"}], [{"name": "x", "token": "t"}])  # default: the schema's order


def test_additional_and_pattern_properties() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}},
              "patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": False}
    check(schema, [{}, {"a": 1}, {"a": 1, "x-y": "s"}, {"x-": ""}], [{"b": 1}, {"x-y": 1}, {"a": "s"}])
    check({"type": "object", "additionalProperties": {"type": "boolean"}, "properties": {"n": {"type": "null"}}},
          [{"n": None, "q": True}], [{"q": 1}, {"n": True}])
    check({"type": "object", "propertyNames": {"maxLength": 2}, "minProperties": 1, "maxProperties": 2},
          [{"ab": 1}, {"a": 1, "b": 2}], [{}, {"abc": 1}, {"a": 1, "b": 2, "c": 3}])


def test_many_pattern_properties_against_jsonschema() -> None:
    """More patternProperties than a 2**n split could afford (eight here; MaskBench's OCDS Tender has six
    language-tagged ones): keys are classed by the patterns they match, overlaps included, and every random
    object is accepted exactly when ``jsonschema`` says it is valid."""
    import jsonschema

    patterns = {"^a": {"type": "integer"}, "^b": {"type": "string"}, "z$": {"type": ["integer", "null"]},
                "^a.*z$": {"minimum": 5}, "^[0-9]+$": {"type": "boolean"}, "x": {"type": "integer", "maximum": 3},
                "^ab": {"multipleOf": 2}, "^c[0-9]$": {"type": "null"}}
    schema = {"type": "object", "patternProperties": patterns, "additionalProperties": {"type": "string"}}
    validator = jsonschema.Draft202012Validator(schema)
    rng = random.Random(7)
    keys = ["a", "ab", "abz", "az", "b", "bz", "z", "12", "1z", "x", "ax", "abx", "c1", "c12", "q", "", "xz"]
    values: list[Any] = [None, True, 0, 1, 2, 4, 6, 7, -2, "s", "", 1.5]
    good: list[Any] = []
    bad: list[Any] = []
    for _ in range(400):
        obj = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, 4))}
        (good if validator.is_valid(obj) else bad).append(obj)
    assert len(good) > 40 and len(bad) > 40
    check(schema, good, bad)
    # seven patterns that any key may match in any combination: 128 classes, over the limit, refused by place
    independent = {"type": "object", "properties": {"o": {"patternProperties": {c: {"const": i} for i, c in
                                                                                 enumerate("abcdefg")}}}}
    with pytest.raises(SchemaError, match="more than 64 ways") as err:
        schema_to_grammar(independent)
    assert err.value.pointer == "/properties/o/patternProperties"


# MaskBench Github_hard---o82151, cut down (a key matched by two patternProperties whose schemas hold $refs)
_TWO_PATTERNS = json.loads(
    '{"$schema": "http://json-schema.org/draft-04/schema#", "type": "object", "title": "Schema for Evalua'
    'ted Job Config", "properties": {"security": {"type": "object", "$ref": "#/definitions/security"}, "n'
    'otifications": {"$ref": "#/definitions/notifications"}}, "additionalProperties": false, "definitions'
    '": {"encrypted-type": {"type": "object", "properties": {"value": {"type": "string"}, "encrypted": {"'
    'type": "boolean", "default": false}}, "additionalProperties": false, "required": ["value"]}, "hooks"'
    ': {"type": "object", "properties": {"ci": {"$ref": "#/definitions/hook-list"}, "builder": {"$ref": "'
    '#/definitions/hook-list"}, "scm-push": {"$ref": "#/definitions/hook-list"}, "scm-create": {"$ref": "'
    '#/definitions/hook-list"}}, "additionalProperties": false}, "deployment-stop": {"properties": {"time'
    'out": {"type": "string", "description": "Deployment stop timeout represented in terms of seconds or '
    'minutes. e.g: 30s for timeout of 30 seconds. The application will be sent SIGTERM signal and will ha'
    've this time for its cleanup.", "default": "30s"}, "check-retries": {"type": "number", "description"'
    ': "Maximum no. of retries to be attempted to check if deployment is stopped.", "default": "10"}}, "a'
    'dditionalProperties": false}, "proxy": {"type": "object", "properties": {"hosts": {"description": "H'
    'osts associated with the proxy", "patternProperties": {".*": {"$ref": "#/definitions/host"}}}, "upst'
    'reams": {"description": "Backends associated with the proxy", "patternProperties": {".*": {"$ref": "'
    '#/definitions/upstream"}}}, "listeners": {"description": "TCP Listeners associated with proxy (for t'
    'cp based proxy)", "patternProperties": {".*": {"$ref": "#/definitions/listener"}}}}, "additionalProp'
    'erties": false}, "location": {"description": "Proxy location definition for a given proxy path", "ty'
    'pe": "object", "properties": {"path": {"description": "Path to be used for proxy", "type": "string"}'
    ', "port": {"description": "Internal container port for proxy.", "type": "number"}, "enabled": {"desc'
    'ription": "Is location enabled?", "type": "boolean"}, "denied-acls": {"type": "array", "description"'
    ': "List of Denied proxy ACLs", "items": {"type": "string"}}, "allowed-acls": {"type": "array", "desc'
    'ription": "List of Allowed proxy ACLs", "items": {"type": "string"}}, "force-ssl": {"description": "'
    'If SSL needs to be forced at the given path", "default": false, "type": "boolean"}}, "additionalProp'
    'erties": false}, "listener": {"description": "Proxy TCP Listener definition", "type": "object"}, "se'
    'curity": {"type": "object", "properties": {"profile": {"type": "string"}}}, "notifications": {"patte'
    'rnProperties": {"hipchat": {"$ref": "#/definitions/notification-hipchat"}, "github": {"$ref": "#/def'
    'initions/notification-github"}, ".*": {"$ref": "#/definitions/notification"}}}, "notification": {"pr'
    'operties": {"enabled": {"type": "boolean", "description": "Used for enabling/disabling notification"'
    '}, "level": {"description": "Min level for the message to activate this notifier", "type": "number"}'
    '}, "additionalProperties": true}, "notification-hipchat": {"properties": {"enabled": {"type": "boole'
    'an", "description": "Used for enabling/disabling notification"}, "url": {"type": "string", "descript'
    'ion": "Hipchat v2 api url"}, "colors": {"type": "object", "description": "Color mapping"}, "room": {'
    '"type": "string", "description": "Room to be used for notification"}, "token": {"description": "Hipc'
    'hat API v2 token (personal/ room) for notification", "type": "object", "$ref": "#/definitions/encryp'
    'ted-type"}, "level": {"description": "Min level for the message to activate this notifier", "type": '
    '"number"}}, "additionalProperties": false}, "notification-github": {"properties": {"enabled": {"type'
    '": "boolean", "description": "Used for enabling/disabling notification"}, "url": {"type": "string", '
    '"description": "Github API url base"}, "token": {"description": "Github Oauth token", "type": "objec'
    't", "$ref": "#/definitions/encrypted-type"}, "level": {"description": "Min level for the message to '
    'activate this notifier", "type": "number"}}, "additionalProperties": true}, "environment": {"pattern'
    'Properties": {".*": {"oneOf": [{"type": "string", "maxLength": 4096}, {"$ref": "#/definitions/encryp'
    'ted-type"}]}}, "additionalProperties": false}}}'
)
_TWO_PATTERNS_VALID = json.loads(
    '{"security": {"profile": "profile1"}, "notifications": {"hipchat": {"enabled": true, "url": "https:/'
    '/api.hipchat.com/v2/", "colors": {"success": "green", "failure": "red"}, "room": "room1", "token": {'
    '"value": "token1", "encrypted": true}, "level": 1}, "github": {"enabled": true, "url": "https://api.'
    'github.com/", "token": {"value": "token2", "encrypted": true}, "level": 1}}}'
)


@pytest.mark.parametrize("address_order", [1, -1])
def test_meets_do_not_depend_on_memory_addresses(address_order: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key matched by two patternProperties must satisfy both schemas; the merged object lists the
    first schema's properties first, whatever the memory addresses of the two. The order once followed
    them, and this MaskBench instance was rejected or not depending on what the process had compiled
    before. ``id`` is shadowed in the module by addresses in the order objects are met, and reversed."""
    import builtins

    import constrain.json_schema as js

    seen: dict[int, int] = {}
    alive: list[Any] = []

    def first_seen(x: Any) -> int:  # an "address" that grows (or shrinks) with the order objects are met
        if builtins.id(x) not in seen:
            seen[builtins.id(x)] = address_order * len(seen)
            alive.append(x)
        return seen[builtins.id(x)]

    monkeypatch.setattr(js, "id", first_seen, raising=False)
    check(_TWO_PATTERNS, [_TWO_PATTERNS_VALID], [])


def test_dependencies() -> None:
    check({"dependentRequired": {"a": ["b"]}}, [{}, {"b": 1}, {"a": 1, "b": 2}, 5], [{"a": 1}])
    check({"dependentSchemas": {"a": {"properties": {"b": {"type": "string"}}}}}, [{"a": 1, "b": "s"}, {"b": 1}],
          [{"a": 1, "b": 2}])


# ---------------------------------------------------------------- arrays
def test_arrays() -> None:
    check({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
          [[], [1], [1, "a"]], [[1, "a", 2], ["a"]])
    check({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3}, [[1, 2], [1, 2, 3]],
          [[1], [1, 2, 3, 4], [1, "a"]])
    check({"type": "array", "contains": {"type": "string"}, "minContains": 2, "maxContains": 3},
          [["a", "b"], [1, "a", 2, "b", "c"]], [["a"], ["a", "b", "c", "d"], []])
    check({"type": "array", "items": [{"type": "integer"}], "additionalItems": {"type": "string"}}, [[1, "a"]],
          [["a"], [1, 2]], draft=7)



def test_unique_items_over_finite_values() -> None:
    """``uniqueItems`` is exact where the items are a few scalars: each value at most once, numbers by value."""
    check({"type": "array", "items": {"enum": ["a", "b", "c"]}, "uniqueItems": True},
          [[], ["a"], ["c", "a"], ["b", "c", "a"]], [["a", "a"], ["a", "b", "a"], ["d"], ["a", "b", "c", "a"]])
    check({"type": "array", "items": {"enum": [1, 1.0, 2, None, True]}, "uniqueItems": True, "minItems": 2},
          [[1, 2], [None, True, 2], [1.0, 2]], [[1, 1], [1, 1.0], [2, 2], [None], [True, True]])
    check({"type": "array", "items": {"type": "boolean"}, "uniqueItems": True},
          [[True, False], [False]], [[True, True], [True, False, True]])
    check({"type": "array", "items": {"const": "x"}, "uniqueItems": True, "maxItems": 5}, [[], ["x"]], [["x", "x"]])
    with pytest.raises(SchemaError, match="matches no JSON value"):
        schema_to_grammar({"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": True, "minItems": 3})
    with pytest.raises(SchemaError, match="uniqueItems"):  # open item types stay refused
        schema_to_grammar({"type": "array", "items": {"type": "string"}, "uniqueItems": True})
    with pytest.raises(SchemaError, match="uniqueItems"):  # too many values to track
        schema_to_grammar({"type": "array", "items": {"enum": list(range(11))}, "uniqueItems": True})


def test_unevaluated_where_annotations_are_static() -> None:
    """unevaluatedProperties/Items over what the schema, its allOf and its references evaluate; branches
    that may or may not match (anyOf, if) are fine when they evaluate nothing."""
    check({"$defs": {"base": {"properties": {"id": {"type": "integer"}}, "required": ["id"]}},
           "allOf": [{"$ref": "#/$defs/base"}], "properties": {"name": {"type": "string"}},
           "patternProperties": {"^x-": {"type": "integer"}}, "unevaluatedProperties": False,
           "anyOf": [{"required": ["name"]}, {"required": ["x-a"]}]},
          [{"id": 1, "name": "n"}, {"id": 1, "x-a": 2}, {"id": 1, "name": "n", "x-b": 3}],
          [{"id": 1}, {"id": 1, "name": "n", "other": 2}, {"name": "n"}, {"id": 1, "x-a": "s"}])
    check({"properties": {"a": True}, "unevaluatedProperties": {"type": "integer"}},
          [{"a": "s", "b": 1}, {}], [{"b": "s"}])
    check({"allOf": [{"prefixItems": [{"type": "integer"}]}], "prefixItems": [True, True],
           "unevaluatedItems": False}, [[1], [1, "a"]], [[1, "a", None], ["a"]])
    check({"items": {"type": "integer"}, "unevaluatedItems": False}, [[1, 2]], [["a"]])
    check({"$schema": "https://json-schema.org/draft/2019-09/schema", "items": [True], "unevaluatedItems": False},
          [[], [1]], [[1, 2]])
    check({"$schema": "https://json-schema.org/draft/2019-09/schema", "prefixItems": [True],
           "unevaluatedItems": False}, [[]], [[1]])  # no prefixItems before 2020-12

# ---------------------------------------------------------------- combinators and references
def test_combinators() -> None:
    check({"anyOf": [{"type": "string"}, {"minimum": 3}]}, ["x", 3, None], [2])
    check({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, [1, 2.5], [3])  # 3 matches both branches
    check({"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}, [{"a": 1}, {"b": 1}], [{"a": 1, "b": 1}, {}])
    check({"allOf": [{"properties": {"a": {"maximum": 5}}}, {"properties": {"a": {"minimum": 1}}}]},
          [{"a": 3}], [{"a": 0}, {"a": 6}])
    check({"not": {"type": ["string", "null"]}}, [1, [], {}], ["a", None])
    check({"if": {"properties": {"k": {"const": "n"}}}, "then": {"properties": {"v": {"type": "number"}}},
           "else": {"properties": {"v": {"type": "string"}}}},
          [{"k": "n", "v": 1}, {"k": "s", "v": "x"}, {"v": 1}], [{"k": "n", "v": "x"}, {"k": "s", "v": 1}, {"v": "x"}])


def test_recursive_refs_and_pointers() -> None:
    kids = {"type": "array", "items": {"$ref": "#/$defs/node"}}
    tree = {"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}, "kids": kids},
                               "required": ["v"], "additionalProperties": False}},
            "$ref": "#/$defs/node"}
    check(tree, [{"v": 1}, {"v": 1, "kids": [{"v": 2, "kids": [{"v": 3}]}]}], [{"v": 1, "kids": [{}]}])
    check({"definitions": {"a~b": {"type": "integer"}, "c%d": {"type": "string"}},
           "properties": {"x": {"$ref": "#/definitions/a~0b"}, "y": {"$ref": "#/definitions/c%25d"}}},
          [{"x": 1, "y": "s"}], [{"x": "s"}, {"y": 1}])
    check({"$id": "http://x.test/root.json", "properties": {"r": {"$ref": "other.json#/defs/n"}}},
          [{"r": 1}], [{"r": "a"}], resources={"http://x.test/other.json": {"defs": {"n": {"type": "integer"}}}})


def test_pydantic_model() -> None:
    from pydantic import BaseModel

    class Item(BaseModel):
        name: str
        price: float
        tags: list[str] = []
        parent: Item | None = None

    r = Recognizer(schema_to_grammar(Item))
    item = Item(name="a", price=1.5, parent=Item(name="b", price=2, tags=["x"]))
    assert r.accepts(item.model_dump_json())
    assert not r.accepts('{"name":"a"}')


# ---------------------------------------------------------------- output forms
def test_flexible_whitespace_is_bounded() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}}
    r = check(schema, [Raw('{ "a" : [ 1 , 2 ] }'), Raw('\n{\n  "a": [\n    1\n  ]\n}\n'), Raw("{}")], [],
              whitespace="flexible", max_whitespace=8)
    assert r.accepts("{" + " " * 16 + "}") and not r.accepts("{" + " " * 17 + "}")  # two runs of at most 8
    assert not r.accepts('{"a":[1,' + " " * 9 + "2]}")


def test_indent_is_exactly_json_dumps() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "array"}, "b": {"type": "object"}}}
    value = {"a": [1, {"c": None}, []], "b": {}}
    r = Recognizer(schema_to_grammar(schema, indent=2))
    assert r.accepts(json.dumps(value, indent=2))
    assert not r.accepts(json.dumps(value, indent=4))
    assert not r.accepts(compact(value))


# ---------------------------------------------------------------- drafts
def test_draft_differences() -> None:
    check({"$schema": "http://json-schema.org/draft-04/schema#", "maximum": 5, "exclusiveMaximum": True},
          [4.99], [5])
    check({"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer"}, [5], [Raw("5.0")])
    check({"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"s": {"type": "string"}},
           "$ref": "#/definitions/s", "maxLength": 1}, ["long is fine"], [1])  # siblings of $ref ignored
    check({"definitions": {"s": {"type": "string"}}, "$ref": "#/definitions/s", "maxLength": 1}, ["a"], ["ab"])


# ---------------------------------------------------------------- errors and relaxation
@pytest.mark.parametrize("schema,keyword,pointer", [
    ({"type": "array", "uniqueItems": True}, "uniqueItems", "/uniqueItems"),
    ({"properties": {"a": {"type": "string", "pattern": "(?=a)"}}}, "pattern", "/properties/a/pattern"),
    ({"properties": {"d": {"format": "idn-hostname"}}}, "format", "/properties/d/format"),
    ({"anyOf": [{"properties": {"a": True}}, {"required": ["b"]}], "unevaluatedProperties": False},
     "unevaluatedProperties", "/unevaluatedProperties"),
    ({"contains": {"type": "string"}, "unevaluatedItems": False}, "unevaluatedItems", "/unevaluatedItems"),
])
def test_unsupported_keywords_are_named(schema: dict[str, Any], keyword: str, pointer: str) -> None:
    with pytest.raises(SchemaError) as e:
        schema_to_grammar(schema)
    assert keyword in str(e.value) and e.value.pointer == pointer and str(e.value).endswith(f"at {pointer}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schema_to_grammar(schema, strict=False)
    msgs = [str(w.message) for w in caught if issubclass(w.category, SchemaRelaxedWarning)]
    assert any(keyword in m and pointer in m for m in msgs), msgs


def test_relaxed_keywords_accept_more() -> None:
    with pytest.warns(SchemaRelaxedWarning, match="uniqueItems"):
        r = Recognizer(schema_to_grammar({"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
                                         strict=False))
    assert r.accepts("[1,1]") and not r.accepts('["a"]')


def test_annotations_and_unknown_keywords_are_ignored() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check({"title": "t", "description": "d", "default": 1, "examples": [1], "$comment": "c", "x-vendor": {},
               "deprecated": True, "readOnly": True, "format": "int32", "type": "integer"}, [1], ["a"])


def test_huge_length_bound_with_a_pattern_is_refused_before_building() -> None:
    """maxLength 65535 with a pattern needs one automaton state per counted character: refused up front
    (it used to allocate gigabytes before failing); alone, long bounds are counted by the grammar."""
    with pytest.raises(SchemaError, match="string length bound 65535 too large"):
        schema_to_grammar({"type": "string", "maxLength": 65535, "pattern": "^a+$"})
    check({"type": "string", "maxLength": 65535}, ["", "a" * 100], [1])


def test_empty_schema_is_an_error() -> None:
    with pytest.raises(SchemaError, match="matches no JSON value"):
        schema_to_grammar({"type": "string", "enum": [1]})


def test_nullable() -> None:
    check({"type": "string", "nullable": True}, ["a", None], [1])


def test_terminals_are_shared_across_schemas() -> None:
    """Generic lexemes are the same DFA objects in every grammar (the engine caches masks by them)."""
    g1 = schema_to_grammar({"properties": {"a": {"type": "string"}, "b": {"type": "number"}}})
    g2 = schema_to_grammar({"items": {"type": "string", "format": "date"}, "type": ["array", "number"]})
    keys1 = {getattr(t, "key", None) for t in g1.terminals.values()}
    keys2 = {getattr(t, "key", None) for t in g2.terminals.values()}
    assert len(keys1 & keys2 - {None}) >= 1


def test_length_bounds_meet_patterns_exactly() -> None:
    """A length bound met with a pattern is clipped to the pattern's longest string and counted over the
    pattern's bytes only; the automaton must be the plain intersection."""
    from constrain import json_formats as jf

    products = 0
    for pattern, lo, hi in [("^[a-z]+$", 3, 40), ("^([a-z][0-9])+$", 30, None), ("^x{1,10}$", 0, 30),
                            ("^é+ü?$", 2, 26), ("a", 25, 60), ("^(ab|cd){1,12}$", 5, None),
                            ("^(ab|cd){1,12}$", 5, 10)]:
        both = jf.land("str", jf.atom("str", "len", lo, hi), jf.atom("str", "pattern", pattern))
        products += both.op == "and"
        plain = jf.string_length_dfa(lo, hi).intersect(jf.to_dfa(jf.atom("str", "pattern", pattern)))
        assert jf.to_dfa(both).key == plain.key, (pattern, lo, hi)
    assert products >= 3
    # 10,000 counted characters: 150,000 states if every character could be any, 20,000 over [a-z0-9]
    check({"type": "string", "pattern": "^([a-z][0-9])+$", "minLength": 10000}, ["a1" * 5000], ["a1" * 4999])


@pytest.mark.parametrize("schema", [{}, {"properties": {"a": {"type": "string"}}},
                                    {"type": "object", "properties": {"a": {}, "b": True}}])
def test_any_value_is_emitted_once(schema: dict[str, Any]) -> None:
    """The "any JSON value" schema contains itself (any array holds any values): its array and object
    rules are made once, however many places use it."""
    g = schema_to_grammar(schema)
    heads = {r.lhs.rsplit("_", 1)[0] for r in g.rules if r.lhs.startswith(("array_", "object_"))}
    counts = {h: len({r.lhs for r in g.rules if r.lhs.rsplit("_", 1)[0] == h}) for h in heads}
    assert counts["array"] == 1
    assert counts["object"] == (1 if schema == {} else 2)  # the root's own object, and any value's
