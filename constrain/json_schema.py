"""JSON Schema (drafts 4, 6, 7, 2019-09, 2020-12) to the grammar IR, exact or refused.

Pipeline:

1. **Resolve**: index ``$id``/``id``, ``$anchor`` and ``$dynamicAnchor`` of the document (and of the
   ``resources`` given), so that ``$ref`` can follow URIs, JSON pointers and anchors.
2. **Translate** each schema object to a :class:`Schema`: a union split by JSON type, where strings and
   numbers are regular languages (:class:`constrain.json_formats.Lang`), and arrays and objects are
   lists of :class:`Arr` / :class:`Obj` alternatives. ``allOf`` is intersection, ``anyOf`` union,
   ``not`` complement, ``oneOf`` a union of provably disjoint branches (or ``A and not B`` forms),
   ``if``/``then``/``else`` ``(if and then) or (not if and else)``. ``$ref`` stays a lazy
   :class:`Ref` (recursion), expanded only where an intersection needs its structure.
3. **Emit** grammar rules: objects and arrays become small left-recursive state machines over
   key/value and element symbols; strings and numbers become terminals (shared regexes where possible).

What cannot be enforced exactly raises :class:`SchemaError` naming the keyword and its JSON pointer, or,
with ``strict=False``, is relaxed (the language grows) with a :class:`SchemaRelaxedWarning` naming it.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from json.encoder import encode_basestring
from typing import Any, NamedTuple
from urllib.parse import unquote, urldefrag, urljoin

from constrain import json_formats as jf
from constrain.errors import LimitError, RegexError, SchemaError
from constrain.fsm import literal_dfa
from constrain.grammar_ir import Grammar, GrammarBuilder, N, Symbol, T
from constrain.json_formats import Lang, atom, bottom, land, lnot, lor, top
from constrain.regex import Repeat, Seq, literal

State = tuple[int, ...]
"""A state of the counting machine of one object or array."""

DEFAULT_BASE = "https://constrain.invalid/schema.json"
MAX_ALTERNATIVES = 64
"""Most object (or array) alternatives one schema may expand to (allOf over anyOf multiplies them)."""
MAX_STATES = 4096
"""Most states of the per-object or per-array counting machine (any_order, min/maxProperties, ...)."""
MAX_UNIQUE_VALUES = 10
"""``uniqueItems`` is enforced over at most this many values (the array machine tracks which are used)."""
MAX_KEY_CLASSES = 64
"""Most classes of undeclared keys (by the set of ``patternProperties`` they match) one object may have."""
LONG_STRING = 256
"""Length bounds above this are counted with 32-character chunks in the grammar instead of one DFA (of
about four states per character). Below it one DFA is cheaper: a chunk may end after any character, so
every long token inside a chunked string crosses lexeme boundaries the token masks cannot cache."""
CHUNK = 32

ANNOTATIONS = frozenset({
    "$schema", "$id", "id", "$anchor", "$dynamicAnchor", "$recursiveAnchor", "$comment", "$vocabulary", "$defs",
    "definitions", "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly",
    "contentEncoding", "contentMediaType", "contentSchema",
})


class SchemaRelaxedWarning(UserWarning):
    """A keyword that ``strict=False`` does not enforce (the message names it and its JSON pointer)."""


class _Unsupported(Exception):
    """A keyword we cannot enforce exactly (turned into SchemaError or a warning at the keyword)."""


class _Cycle(_Unsupported):
    """A reference needed while it is being resolved: a real loop (``A = allOf[A]``), or an emptiness
    proof that went too deep. Never relaxed at the keyword where it surfaces."""


# ================================================================ the intermediate representation
@dataclass(frozen=True, eq=False)
class Ref:
    """A lazily resolved schema: a ``$ref`` target, or a deferred intersection/complement (recursion)."""

    key: Hashable
    label: str


@dataclass(frozen=True, eq=False)
class Arr:
    """Arrays: element i matches ``prefix[i]`` (or ``items`` past the prefix); count and contains bounds."""

    prefix: tuple[Schema, ...]
    items: Schema
    min_items: int
    max_items: int | None
    contains: tuple[tuple[Schema, int, int | None], ...]
    unique: tuple[Schema, ...] | None = None
    """With ``uniqueItems`` over a finite set of scalars: one schema per value (elements come from these,
    each at most once); ``prefix`` and ``contains`` are then empty."""


@dataclass(frozen=True, eq=False)
class Obj:
    """Objects: named ``props`` (a FALSE schema forbids the key), then ``extra`` classes of other keys.

    ``extra`` holds disjoint (key language, value schema) pairs for keys not in ``props``; a key in no
    class is forbidden. ``propertyNames`` is already folded into both. Key languages may include named
    keys: emission removes those from ``extra`` and ``witness`` languages."""

    props: tuple[tuple[str, Schema], ...]
    required: frozenset[str]
    extra: tuple[tuple[Lang, Schema], ...]
    min_props: int
    max_props: int | None
    witness: tuple[tuple[Lang, Schema], ...] = ()
    """Each (key language, value schema): some key outside ``props`` in that language has such a value
    (what the complement of ``additionalProperties``/``patternProperties`` needs)."""
    declared: int = 0
    """How many leading ``props`` a schema declared; the rest are slots made for ``required`` keys that no
    ``properties`` names (they come last, and do not set the output order when objects are merged)."""

    def value_for(self, name: str) -> Schema | None:
        """The schema a value under key ``name`` must match (None: the key is forbidden)."""
        for k, s in self.props:
            if k == name:
                return s
        for lang, s in self.extra:
            if jf.contains(lang, name):
                return s
        return None


@dataclass(frozen=True, eq=False)
class Schema:
    """A set of JSON values, split by type. Interned: equal schemas are the same object."""

    null: bool
    bools: frozenset[bool]
    num: Lang
    str: Lang
    arrs: tuple[Arr, ...]
    objs: tuple[Obj, ...]
    refs: tuple[Ref, ...]

    @property
    def is_false(self) -> bool:
        return not (self.null or self.bools or self.arrs or self.objs or self.refs) and self.num.is_bottom \
            and self.str.is_bottom


class _Ctx(NamedTuple):
    """Where a schema object sits: its base URI, draft (4, 6, 7, 2019, 2020) and JSON pointer (a tuple:
    one is made for every subschema, and a frozen dataclass cost twice as much to build)."""

    base: str
    draft: int
    pointer: str

    def at(self, *parts: str | int) -> _Ctx:
        p = self.pointer
        for x in parts:
            x = str(x)
            p += "/" + (x.replace("~", "~0").replace("/", "~1") if "~" in x or "/" in x else x)
        return _Ctx(self.base, self.draft, p)


_DRAFTS = {
    "json-schema.org/draft-03/schema": 4, "json-schema.org/draft-04/schema": 4, "json-schema.org/draft-06/schema": 6,
    "json-schema.org/draft-07/schema": 7, "json-schema.org/draft/2019-09/schema": 2019,
    "json-schema.org/draft/2020-12/schema": 2020,
}


def draft_of(uri: Any) -> int | None:
    if not isinstance(uri, str):
        return None
    u = uri.split("://", 1)[-1].rstrip("#")
    return _DRAFTS.get(u)


_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMA_ONE = ("additionalProperties", "additionalItems", "unevaluatedItems", "unevaluatedProperties", "contains",
                  "propertyNames", "if", "then", "else", "not", "items", "contentSchema")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_SUBSCHEMA_KEYWORDS = frozenset((*_SUBSCHEMA_MAPS, *_SUBSCHEMA_ONE, *_SUBSCHEMA_LISTS, "dependencies"))


# ================================================================ resolution of $ref
class _Resolver:
    """URIs, anchors and JSON pointers of the root document and the extra ``resources``."""

    def __init__(self, root: Any, draft: int, resources: dict[str, Any]) -> None:
        self._docs: dict[str, tuple[Any, int]] = {}
        self._anchors: dict[str, tuple[Any, _Ctx]] = {}
        self._dynamic: dict[str, list[tuple[Any, _Ctx]]] = {}
        self.ctx_of: dict[int, _Ctx] = {}
        self._keep: list[Any] = [root]
        self._resources = resources
        self._draft = draft
        self._indexed = False
        self.root_ctx = _Ctx(DEFAULT_BASE, draft, "")

    def _index_all(self) -> None:
        """Index the documents when a reference or a meta-schema first needs it (most schemas have no
        ``$ref``, and walking every subschema was a tenth of their translation)."""
        if self._indexed:
            return
        self._indexed = True
        self._index(self._keep[0], self.root_ctx, is_root=True)
        for uri, doc in self._resources.items():
            self._keep.append(doc)
            d = draft_of(doc.get("$schema")) if isinstance(doc, dict) else None
            self._docs.setdefault(urldefrag(uri)[0], (doc, d or self._draft))
            self._index(doc, _Ctx(urldefrag(uri)[0], d or self._draft, uri + "#"), is_root=True)

    @property
    def docs(self) -> dict[str, tuple[Any, int]]:
        self._index_all()
        return self._docs

    @property
    def anchors(self) -> dict[str, tuple[Any, _Ctx]]:
        self._index_all()
        return self._anchors

    @property
    def dynamic(self) -> dict[str, list[tuple[Any, _Ctx]]]:
        self._index_all()
        return self._dynamic

    def enter(self, node: dict[str, Any], ctx: _Ctx) -> _Ctx:
        """The context inside ``node`` (its own ``$schema``, ``$id``)."""
        draft = draft_of(node.get("$schema")) or ctx.draft
        ident = node.get("$id") if draft >= 6 else node.get("id")
        if draft <= 7 and "$ref" in node:
            ident = None  # up to draft 7, $ref makes every sibling keyword (even $id) ignored
        base = ctx.base
        if isinstance(ident, str) and not (draft >= 2019 and ident.startswith("#")):
            base = urldefrag(urljoin(ctx.base, ident))[0] or ctx.base
        if base == ctx.base and draft == ctx.draft:
            return ctx
        return _Ctx(base, draft, ctx.pointer)

    def _index(self, node: Any, ctx: _Ctx, is_root: bool = False) -> None:
        if not isinstance(node, dict):
            return
        inner = self.enter(node, ctx)
        self.ctx_of.setdefault(id(node), ctx)  # the context a translation of ``node`` starts from
        if is_root or inner.base != ctx.base:
            self._docs.setdefault(inner.base, (node, inner.draft))
        ident = node.get("$id") if inner.draft >= 6 else node.get("id")
        if isinstance(ident, str) and "#" in ident:
            frag = urldefrag(urljoin(ctx.base, ident))[1]
            if frag and not frag.startswith("/"):
                self._anchors.setdefault(f"{inner.base}#{frag}", (node, ctx))
        for key in ("$anchor", "$dynamicAnchor"):
            name = node.get(key)
            if isinstance(name, str):
                self._anchors.setdefault(f"{inner.base}#{name}", (node, ctx))
        name = node.get("$dynamicAnchor")
        if isinstance(name, str):
            self._dynamic.setdefault(name, []).append((node, ctx))
        if node.keys().isdisjoint(_SUBSCHEMA_KEYWORDS):  # a leaf (most nodes)
            return
        for k in _SUBSCHEMA_MAPS:
            v = node.get(k)
            if isinstance(v, dict):
                for name2, sub in v.items():
                    self._index(sub, inner.at(k, name2))
        for k in _SUBSCHEMA_ONE:
            v = node.get(k)
            if isinstance(v, dict):
                self._index(v, inner.at(k))
        for k in _SUBSCHEMA_LISTS:
            v = node.get(k)
            if isinstance(v, list):
                for i, sub in enumerate(v):
                    self._index(sub, inner.at(k, i))
        deps = node.get("dependencies")
        if isinstance(deps, dict):
            for name2, sub in deps.items():
                self._index(sub, inner.at("dependencies", name2))

    def resolve(self, ref: str, ctx: _Ctx) -> tuple[Any, _Ctx]:
        full = urljoin(ctx.base, ref)
        uri, frag = urldefrag(full)
        if not uri:
            uri = ctx.base
        if frag and not frag.startswith("/"):
            hit = self.anchors.get(f"{uri}#{frag}")
            if hit is None:
                raise _Unsupported(f"cannot resolve $ref {ref!r}")
            return hit
        doc = self.docs.get(uri)
        if doc is None:
            raise _Unsupported(f"cannot resolve $ref {ref!r} (unknown document {uri}; pass it in resources=)")
        node, draft = doc
        pointer = ""
        for part in unquote(frag).split("/")[1:] if frag else []:
            part = part.replace("~1", "/").replace("~0", "~")
            pointer += "/" + part
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise _Unsupported(f"cannot resolve $ref {ref!r}: no {pointer!r} in {uri}")
        known = self.ctx_of.get(id(node))
        if known is not None:
            return node, known
        return node, _Ctx(uri, draft, f"{uri}#{pointer}" if uri != self.root_ctx.base else pointer)


# ================================================================ the converter
@dataclass
class Options:
    whitespace: str = "compact"
    max_whitespace: int = 20
    indent: int | None = None
    any_order: bool = False
    strict: bool = True
    draft: int | None = None
    max_depth: int = 32
    assert_format: bool = True


@dataclass
class _Evaluated:
    """Object keys (names, patterns) or leading array items that in-place subschemas evaluate."""

    names: set[str] = field(default_factory=set)
    patterns: list[Lang] = field(default_factory=list)
    items: int = 0
    everything: bool = False


class _Converter:
    """Translates schema objects to interned :class:`Schema` values, with their set operations."""

    def __init__(self, root: Any, options: Options, resources: dict[str, Any]) -> None:
        self.opt = options
        draft = options.draft or (draft_of(root.get("$schema")) if isinstance(root, dict) else None) or 2020
        self.resolver = _Resolver(root, draft, resources)
        self._check_vocabulary(root)
        self._intern: dict[Hashable, Any] = {}
        self._memo: dict[Hashable, Schema] = {}
        self._thunks: dict[Hashable, Callable[[], Schema]] = {}
        self._resolved: dict[Hashable, Schema] = {}
        self._resolving: set[Hashable] = set()
        self._and: dict[tuple[int, int], Schema] = {}
        self._not: dict[int, Schema] = {}
        self._empty: dict[int, bool] = {}
        self.where: dict[Lang, str] = {}
        """JSON pointer that first produced each string/number language (for error messages)."""
        self.FALSE = self.schema_of()
        # TRUE contains itself (any array holds any items); tie the knot by hand
        self.TRUE = Schema(True, frozenset({True, False}), top("num"), top("str"), (), (), ())
        any_arr = self._mk(Arr, (), self.TRUE, 0, None, ())
        any_obj = self._mk(Obj, (), frozenset(), ((top("str"), self.TRUE),), 0, None, (), 0)  # as obj() makes it
        object.__setattr__(self.TRUE, "arrs", (any_arr,))
        object.__setattr__(self.TRUE, "objs", (any_obj,))
        self._intern[(Schema, True, frozenset({True, False}), top("num"), top("str"), (any_arr,), (any_obj,), ())] = \
            self.TRUE
        self.root = self.translate(root, self.resolver.root_ctx)

    def _check_vocabulary(self, root: Any) -> None:
        """Refuse a custom meta-schema whose ``$vocabulary`` leaves out one whose keywords we would enforce
        (its instances are not constrained by them, and enforcing them anyway would reject valid ones)."""
        uri = root.get("$schema") if isinstance(root, dict) else None
        if not isinstance(uri, str) or draft_of(uri) is not None:
            return
        meta = self.resolver.docs.get(urldefrag(uri)[0])
        vocab = meta[0].get("$vocabulary") if meta is not None and isinstance(meta[0], dict) else None
        if not isinstance(vocab, dict):
            return
        for name in ("applicator", "validation"):
            if not any(k.rstrip("/").endswith("/vocab/" + name) for k in vocab):
                raise SchemaError(f"meta-schema {uri} leaves out the {name} vocabulary", "/$schema")

    # ------------------------------------------------------------ interning
    def _mk(self, cls: type, *fields: Any) -> Any:
        key = (cls, *fields)
        hit = self._intern.get(key)
        if hit is None:
            hit = cls(*fields)
            self._intern[key] = hit
        return hit

    def schema_of(self, null: bool = False, bools: frozenset[bool] = frozenset(), num: Lang | None = None,
                  str: Lang | None = None, arrs: Iterable[Arr] = (), objs: Iterable[Obj] = (),
                  refs: Iterable[Ref] = ()) -> Schema:
        arrs_t = tuple(dict.fromkeys(arrs))
        objs_t = tuple(dict.fromkeys(objs))
        if len(arrs_t) > MAX_ALTERNATIVES or len(objs_t) > MAX_ALTERNATIVES:
            raise _Unsupported(f"more than {MAX_ALTERNATIVES} alternatives (allOf over anyOf/oneOf)")
        return self._mk(Schema, null, frozenset(bools), num or bottom("num"), str or bottom("str"), arrs_t, objs_t,
                        tuple(dict.fromkeys(refs)))

    def arr(self, prefix: Sequence[Schema], items: Schema | None, min_items: int, max_items: int | None,
            contains: Sequence[tuple[Schema, int, int | None]]) -> Arr | None:
        """An array alternative, normalised; None if it has no instance."""
        items = self.TRUE if items is None else items
        prefix = list(prefix)
        if max_items is not None:
            if max_items < min_items:
                return None
            if max_items <= len(prefix):
                prefix = prefix[:max_items]
                items = self.FALSE
        while prefix and prefix[-1] is items:
            prefix.pop()
        if items.is_false and min_items > len(prefix):
            return None
        if items.is_false:
            max_items = len(prefix) if max_items is None else min(max_items, len(prefix))
        cs = tuple(c for c in dict.fromkeys(contains) if not (c[1] == 0 and c[2] is None))
        return self._mk(Arr, tuple(prefix), items, min_items, max_items, cs)  # type: ignore[no-any-return]

    def obj(self, props: Sequence[tuple[str, Schema]], required: frozenset[str],
            extra: Sequence[tuple[Lang, Schema]] | None, min_props: int, max_props: int | None,
            witness: Sequence[tuple[Lang, Schema]] = (), declared: int | None = None) -> Obj | None:
        """An object alternative, normalised; None if it has no instance."""
        extra_t = ((top("str"), self.TRUE),) if extra is None else tuple(extra)
        extra_t = tuple((k, v) for k, v in extra_t if not v.is_false and not k.is_bottom)
        names = {k for k, _ in props}
        n_declared = len(props) if declared is None else declared
        for r in sorted(required - names):  # required keys that are not named: give them a slot
            v = self._extra_value(extra_t, r)
            props = [*props, (r, v if v is not None else self.FALSE)]
        props_t = tuple(props)
        if any(v.is_false for k, v in props_t if k in required):
            return None
        if max_props is not None and (max_props < min_props or len(required) > max_props):
            return None
        if not extra_t and min_props > sum(1 for _, v in props_t if not v.is_false):
            return None
        wit = tuple(dict.fromkeys((k, v) for k, v in witness))
        if any(v.is_false or k.is_bottom for k, v in wit) or (wit and not extra_t):
            return None
        if len(wit) > 3:
            raise _Unsupported("more than 3 required unnamed properties (nested not/oneOf of objects)")
        return self._mk(Obj, props_t, required, extra_t, min_props, max_props, wit,  # type: ignore[no-any-return]
                        n_declared)

    @staticmethod
    def _extra_value(extra: Sequence[tuple[Lang, Schema]], name: str) -> Schema | None:
        for lang, s in extra:
            if jf.contains(lang, name):
                return s
        return None

    def ref(self, key: Hashable, label: str, thunk: Callable[[], Schema]) -> Schema:
        r = self._mk(Ref, key, label)
        self._thunks.setdefault(key, thunk)
        return self.schema_of(refs=(r,))

    def resolve(self, r: Ref) -> Schema:
        hit = self._resolved.get(r.key)
        if hit is not None:
            return hit
        if r.key in self._resolving:
            raise _Cycle(f"$ref cycle without progress through {r.label}")
        self._resolving.add(r.key)
        try:
            s = self._thunks[r.key]()
        finally:
            self._resolving.discard(r.key)
        self._resolved[r.key] = s
        return s

    def direct(self, s: Schema) -> Schema:
        """``s`` with its top-level references replaced by what they resolve to."""
        if not s.refs:
            return s
        parts = [self.schema_of(s.null, s.bools, s.num, s.str, s.arrs, s.objs)]
        parts += [self.direct(self.resolve(r)) for r in s.refs]
        return self.union(parts)

    # ------------------------------------------------------------ set operations
    def union(self, parts: Sequence[Schema]) -> Schema:
        parts = [p for p in parts if not p.is_false]
        if not parts:
            return self.FALSE
        if len(parts) == 1:
            return parts[0]
        return self.schema_of(
            null=any(p.null for p in parts), bools=frozenset().union(*(p.bools for p in parts)),
            num=lor("num", *(p.num for p in parts)), str=lor("str", *(p.str for p in parts)),
            arrs=[a for p in parts for a in p.arrs], objs=[o for p in parts for o in p.objs],
            refs=[r for p in parts for r in p.refs])

    def intersect(self, a: Schema, b: Schema) -> Schema:
        if a is self.TRUE or b is self.FALSE or a is b:
            return b
        if b is self.TRUE or a is self.FALSE:
            return a
        key = (id(a), id(b)) if id(a) < id(b) else (id(b), id(a))
        hit = self._and.get(key)
        if hit is not None:
            return hit
        da, db = self.direct(a), self.direct(b)
        arrs = [x for p in da.arrs for q in db.arrs if (x := self._and_arr(p, q)) is not None]
        objs = [x for p in da.objs for q in db.objs for x in self._and_obj(p, q)]
        out = self.schema_of(null=da.null and db.null, bools=da.bools & db.bools, num=land("num", da.num, db.num),
                             str=land("str", da.str, db.str), arrs=arrs, objs=objs)
        self._and[key] = out
        return out

    def meet(self, a: Schema, b: Schema) -> Schema:
        """Intersection of nested schemas: deferred behind a Ref where references are involved (recursion)."""
        if a is self.TRUE or b is self.FALSE or a is b:
            return b
        if b is self.TRUE or a is self.FALSE:
            return a
        if not a.refs and not b.refs:
            return self.intersect(a, b)
        # one reference for both orders; the operands stay in the caller's order (an object meet lists the
        # first one's properties first), never in memory-address order, which varied from run to run
        key = ("and", *sorted((id(a), id(b))))
        return self.ref(key, "and", lambda: self.intersect(a, b))

    def _and_arr(self, p: Arr, q: Arr) -> Arr | None:
        if p.unique is not None or q.unique is not None:
            raise _Unsupported("uniqueItems combined with other array schemas (allOf, $ref siblings)")
        n = max(len(p.prefix), len(q.prefix))
        prefix = [self.meet(p.prefix[i] if i < len(p.prefix) else p.items,
                            q.prefix[i] if i < len(q.prefix) else q.items) for i in range(n)]
        his = [x for x in (p.max_items, q.max_items) if x is not None]
        return self.arr(prefix, self.meet(p.items, q.items), max(p.min_items, q.min_items), min(his) if his else None,
                        p.contains + q.contains)

    def _and_obj(self, p: Obj, q: Obj) -> list[Obj]:
        # output order: declared properties (p's, then q's), then slots of keys that are only required
        declared = list(dict.fromkeys([k for k, _ in p.props[:p.declared]] + [k for k, _ in q.props[:q.declared]]))
        names = list(dict.fromkeys(declared + [k for k, _ in p.props] + [k for k, _ in q.props]))
        props = []
        for k in names:
            vp, vq = p.value_for(k), q.value_for(k)
            props.append((k, self.FALSE if vp is None or vq is None else self.meet(vp, vq)))
        extra = []
        for kp, vp2 in p.extra:
            for kq, vq2 in q.extra:
                kl = land("str", kp, kq)
                if not jf.is_empty(kl):
                    extra.append((kl, self.meet(vp2, vq2)))
        his = [x for x in (p.max_props, q.max_props) if x is not None]
        required = p.required | q.required
        lo, hi = max(p.min_props, q.min_props), min(his) if his else None
        # a witness of one side is an unnamed key there, but may be a key the other side names
        options: list[tuple[list[tuple[str, Schema]], frozenset[str], list[tuple[Lang, Schema]]]] = [
            (props, required, [])]
        for side, other in ((p, q), (q, p)):
            own = {k for k, _ in side.props}
            for kw, vw in side.witness:
                grown = []
                for pr, req, wit in options:
                    grown.append((pr, req, [*wit, (land("str", kw, lnot(atom("str", "lits", frozenset(own)))), vw)]))
                    for k, _ in other.props:
                        if k not in own and jf.contains(kw, k):
                            pr2 = [(n, self.meet(v, vw) if n == k else v) for n, v in pr]
                            grown.append((pr2, req | {k}, wit))
                options = grown
                if len(options) > MAX_ALTERNATIVES:
                    raise _Unsupported(f"more than {MAX_ALTERNATIVES} alternatives (not/oneOf of objects)")
        out = [self.obj(pr, req, extra, lo, hi, wit, len(declared)) for pr, req, wit in options]
        return [o for o in out if o is not None]

    def complement(self, s: Schema) -> Schema:
        """Every JSON value not in ``s``; raises _Unsupported where that is not expressible."""
        hit = self._not.get(id(s))
        if hit is not None:
            return hit
        d = self.direct(s)
        arrs = self._not_alternatives(d.arrs, self._not_arr, self.TRUE.arrs[0])
        objs = self._not_alternatives(d.objs, self._not_obj, self.TRUE.objs[0])
        out = self.schema_of(
            null=not d.null, bools=frozenset({True, False}) - d.bools,
            num=top("num") if d.num.is_bottom else lnot(d.num), str=top("str") if d.str.is_bottom else lnot(d.str),
            arrs=arrs.arrs, objs=objs.objs)
        self._not[id(s)] = out
        return out

    def negate(self, s: Schema) -> Schema:
        """Complement of a nested schema (deferred behind a Ref when it has references)."""
        if not s.refs:
            return self.complement(s)
        return self.ref(("not", id(s)), "not", lambda: self.complement(s))

    def _not_alternatives(self, alts: Sequence[Any], negate_one: Callable[[Any], list[Schema]], any_alt: Any) -> Schema:
        """Complement (within one type) of a union of alternatives: the intersection of their complements."""
        if not alts:
            return self.schema_of(arrs=[any_alt] if isinstance(any_alt, Arr) else [],
                                  objs=[any_alt] if isinstance(any_alt, Obj) else [])
        out: Schema | None = None
        for a in alts:
            neg = self.union(negate_one(a))
            out = neg if out is None else self.intersect(out, neg)
        assert out is not None
        return out

    def _not_arr(self, a: Arr) -> list[Schema]:
        """Arrays violating ``a``: each violated condition is one alternative."""
        if a.unique is not None:
            raise _Unsupported("complement of uniqueItems")
        out: list[Arr | None] = []
        if a.min_items > 0:
            out.append(self.arr((), None, 0, a.min_items - 1, ()))
        if a.max_items is not None:
            out.append(self.arr((), None, a.max_items + 1, None, ()))
        for i, p in enumerate(a.prefix):
            if p is not self.TRUE:
                out.append(self.arr([self.TRUE] * i + [self.negate(p)], None, i + 1, None, ()))
        if a.items.is_false:
            if a.max_items is None or a.max_items > len(a.prefix):
                out.append(self.arr((), None, len(a.prefix) + 1, None, ()))
        elif a.items is not self.TRUE:
            if a.prefix:
                raise _Unsupported("complement of items after a prefix")
            out.append(self.arr((), None, 1, None, ((self.negate(a.items), 1, None),)))
        for c, lo, hi in a.contains:
            if lo > 0:
                out.append(self.arr((), None, 0, None, ((c, 0, lo - 1),)))
            if hi is not None:
                out.append(self.arr((), None, 0, None, ((c, hi + 1, None),)))
        return [self.schema_of(arrs=[x]) for x in out if x is not None]

    def _not_obj(self, o: Obj) -> list[Schema]:
        out: list[Obj | None] = []
        names = atom("str", "lits", frozenset(k for k, _ in o.props))
        unnamed = lnot(names)
        if not (len(o.extra) == 1 and o.extra[0][0].is_top and o.extra[0][1] is self.TRUE):
            # some unnamed key is in no class (forbidden), or in a class with a value outside it
            outside = land("str", unnamed, *(lnot(kl) for kl, _ in o.extra))
            out.append(self.obj((), frozenset(), None, 0, None, [(outside, self.TRUE)]))
            for kl, v in o.extra:
                if v is not self.TRUE:
                    out.append(self.obj((), frozenset(), None, 0, None,
                                        [(land("str", kl, unnamed), self.negate(v))]))
        for kw, vw in o.witness:  # no unnamed key in kw has a value in vw
            domain = land("str", kw, unnamed)
            out.append(self.obj((), frozenset(), [(domain, self.negate(vw)), (lnot(domain), self.TRUE)], 0, None))
        for k in sorted(o.required):
            out.append(self.obj([(k, self.FALSE)], frozenset(), None, 0, None))
        for k, v in o.props:
            if v is not self.TRUE:
                out.append(self.obj([(k, self.negate(v))], frozenset({k}), None, 0, None))
        if o.min_props > 0:
            out.append(self.obj((), frozenset(), None, 0, o.min_props - 1))
        if o.max_props is not None:
            out.append(self.obj((), frozenset(), None, o.max_props + 1, None))
        return [self.schema_of(objs=[x]) for x in out if x is not None]

    def is_empty(self, s: Schema) -> bool:
        """True only if ``s`` provably has no instance (recursion is assumed satisfiable)."""
        hit = self._empty.get(id(s))
        if hit is not None:
            return hit
        self._empty[id(s)] = False  # assumption while recursing
        out = self._is_empty(s)
        self._empty[id(s)] = out
        return out

    def _is_empty(self, s: Schema) -> bool:
        if s.null or s.bools or not jf.is_empty(s.num) or not jf.is_empty(s.str):
            return False
        for a in s.arrs:
            need = [a.prefix[i] if i < len(a.prefix) else a.items for i in range(min(a.min_items, len(a.prefix) + 1))]
            if not any(self.is_empty(x) for x in need) and not any(
                    lo > 0 and self.is_empty(c) for c, lo, _ in a.contains):
                return False
        for o in s.objs:
            if not any(self.is_empty(v) for k, v in o.props if k in o.required) and not any(
                    jf.is_empty(k) or self.is_empty(v) for k, v in o.witness):
                return False
        for r in s.refs:
            try:
                if not self.is_empty(self.resolve(r)):
                    return False
            except _Unsupported:
                return False
        return True

    # ------------------------------------------------------------ translation
    def unsupported(self, keyword: str, ctx: _Ctx, reason: str) -> None:
        """Refuse (strict) or warn and relax (non-strict)."""
        where = ctx.pointer + "/" + keyword.replace("~", "~0").replace("/", "~1")
        if self.opt.strict:
            raise SchemaError(f"cannot enforce {keyword!r}: {reason}", where)
        warnings.warn(f"not enforced: {keyword!r} at {where}: {reason}", SchemaRelaxedWarning, stacklevel=4)

    def translate(self, node: Any, ctx: _Ctx) -> Schema:
        if node is True:
            return self.TRUE
        if node is False:
            return self.FALSE
        if not isinstance(node, dict):
            raise SchemaError(f"a schema must be an object or a boolean, not {type(node).__name__}", ctx.pointer)
        inner = self.resolver.enter(node, ctx)
        key = (id(node), inner.base, inner.draft)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._translate(node, inner)
            self._memo[key] = hit
        return hit

    def sub(self, node: Any, ctx: _Ctx) -> Schema:
        """A schema for nested values (properties, items, ...): translated now, or deferred behind a Ref if
        that needs a reference still being resolved (a recursive definition checking its own oneOf)."""
        try:
            return self.translate(node, ctx)
        except _Cycle:
            return self.ref(("sub", id(node), ctx.base, ctx.draft), ctx.pointer.rsplit("/", 1)[-1] or "sub",
                            lambda: self.translate(node, ctx))

    def _ref(self, node: dict[str, Any], keyword: str, ctx: _Ctx) -> Schema | None:
        value = node[keyword]
        if not isinstance(value, str):
            raise SchemaError(f"{keyword} must be a string", ctx.at(keyword).pointer)
        if keyword == "$dynamicRef" or keyword == "$recursiveRef":
            value = self._dynamic_target(node, keyword, value, ctx)
            if value is None:
                return None
        try:
            target, tctx = self.resolver.resolve(value, ctx)
        except _Unsupported as e:
            self.unsupported(keyword, ctx, str(e))
            return None
        label = value.rsplit("/", 1)[-1] or "root"
        return self.ref(("loc", id(target), tctx.base, tctx.draft), label, lambda: self.translate(target, tctx))

    def _dynamic_target(self, node: dict[str, Any], keyword: str, value: str, ctx: _Ctx) -> str | None:
        """A ``$dynamicRef``/``$recursiveRef`` that resolves statically (one candidate anchor), else None."""
        if keyword == "$recursiveRef":
            if value != "#":
                self.unsupported(keyword, ctx, "only '#' is supported")
                return None
            flagged = [n for n, _ in self.resolver.docs.values() if isinstance(n, dict) and n.get("$recursiveAnchor")]
            if len(flagged) > 1:
                self.unsupported(keyword, ctx, "several $recursiveAnchor resources (dynamic scope)")
                return None
            return value
        frag = urldefrag(value)[1]
        cands = self.resolver.dynamic.get(frag, [])
        if frag and not frag.startswith("/") and len(cands) > 1:
            self.unsupported(keyword, ctx, f"several $dynamicAnchor {frag!r} (dynamic scope)")
            return None
        return value

    def _translate(self, node: dict[str, Any], ctx: _Ctx) -> Schema:
        d = ctx.draft
        if "$ref" in node and d <= 7:  # older drafts ignore the siblings of $ref
            return self._ref(node, "$ref", ctx) or self.TRUE
        types = self._types(node, ctx)
        # merged objects list their properties in the order of these parts: what the schema builds on
        # ($ref, allOf: "base class" properties) first, then its own properties, then the alternatives
        parts: list[Schema] = []
        for kw in ("$ref", "$dynamicRef", "$recursiveRef"):
            if kw in node:
                r = self._ref(node, kw, ctx)
                if r is not None:
                    parts.append(r)
        for kw in ("allOf", "anyOf", "oneOf"):
            subs = node.get(kw)
            if kw in node and (not isinstance(subs, list) or not subs):
                raise SchemaError(f"{kw} must be a non-empty array", ctx.at(kw).pointer)
        if "allOf" in node:
            parts.extend(self.translate(x, ctx.at("allOf", i)) for i, x in enumerate(node["allOf"]))
        parts.append(self._local(node, ctx, types))
        if "enum" in node or "const" in node:
            parts.append(self._enum(node, ctx))
        for kw in ("anyOf", "oneOf"):
            if kw in node:
                schemas = [self.translate(x, ctx.at(kw, i)) for i, x in enumerate(node[kw])]
                if kw == "anyOf":
                    parts.append(self.union(schemas))
                else:
                    parts.append(self._one_of(schemas, parts, ctx))
        if "not" in node:
            sub = self.translate(node["not"], ctx.at("not"))
            try:
                parts.append(self.complement(sub))
            except _Cycle:
                raise
            except _Unsupported as e:
                self.unsupported("not", ctx, str(e))
        if d >= 7 and "if" in node:
            parts.append(self._if_then_else(node, ctx))
        parts.extend(self._dependencies(node, ctx))
        for kw in ("unevaluatedProperties", "unevaluatedItems"):
            if kw in node and node[kw] is not True and node[kw] != {} and d >= 2019:
                part = self._unevaluated(node, kw, ctx)
                if part is not None:
                    parts.append(part)
        out = self.TRUE
        try:
            for p in parts:
                out = self.intersect(out, p)
        except _Cycle:
            raise
        except _Unsupported as e:
            raise SchemaError(str(e), ctx.pointer) from None
        if node.get("nullable") is True:
            out = self.union([out, self.schema_of(null=True)])
        return out

    def _unevaluated(self, node: dict[str, Any], kw: str, ctx: _Ctx) -> Schema | None:
        """``unevaluatedProperties``/``unevaluatedItems`` where the evaluated keys (item count) follow from
        the schema alone: its own keywords, ``allOf`` and references, recursively. Branches whose
        success varies by instance (``anyOf``, ``oneOf``, ``if``, ``dependentSchemas``) must not
        evaluate anything, and ``contains`` is refused (which items it evaluates depends on their values);
        ``not`` never evaluates. Then it is one more constraint: keys outside the evaluated ones (items
        past the count) match the keyword's schema."""
        props = kw == "unevaluatedProperties"
        ev = _Evaluated()
        try:
            self._collect_evaluated(node, ctx, props, ev, set(), top_level=True)
        except _Unsupported as e:
            self.unsupported(kw, ctx, str(e))
            return None
        if ev.everything:
            return None
        rest = self.sub(node[kw], ctx.at(kw))
        anything = dict(null=True, bools=frozenset({True, False}), num=top("num"), str=top("str"))
        if props:
            known = lor("str", atom("str", "lits", frozenset(ev.names)), *ev.patterns)
            classes = self._key_classes([(known, self.TRUE)], rest, ctx)
            o = self.obj([], frozenset(), classes, 0, None)
            return self.schema_of(**anything, arrs=self.TRUE.arrs, objs=[o] if o else [])  # type: ignore[arg-type]
        a = self.arr([self.TRUE] * ev.items, rest, 0, None, ())
        return self.schema_of(**anything, arrs=[a] if a else [], objs=self.TRUE.objs)  # type: ignore[arg-type]

    def _collect_evaluated(self, node: Any, ctx: _Ctx, props: bool, ev: _Evaluated, seen: set[int],
                           top_level: bool = False) -> None:
        """Add to ``ev`` what ``node`` evaluates in place (see :meth:`_unevaluated`)."""
        if not isinstance(node, dict):
            return
        if id(node) in seen:
            raise _Unsupported("a reference cycle among the schemas applied in place")
        seen = seen | {id(node)}
        if props:
            named = node.get("properties", {})
            ev.names.update(named if isinstance(named, dict) else ())
            pats = node.get("patternProperties", {})
            for p in pats if isinstance(pats, dict) else ():
                ev.patterns.append(atom("str", "pattern", p))
            if "additionalProperties" in node or (not top_level and "unevaluatedProperties" in node):
                ev.everything = True
        else:
            if ctx.draft >= 2020:
                if isinstance(node.get("prefixItems"), list):
                    ev.items = max(ev.items, len(node["prefixItems"]))
                if "items" in node:
                    ev.everything = True
            else:
                it = node.get("items")
                if isinstance(it, list):
                    ev.items = max(ev.items, len(it))
                    if "additionalItems" in node:
                        ev.everything = True
                elif it is not None:
                    ev.everything = True
            if not top_level and "unevaluatedItems" in node:
                ev.everything = True
            if "contains" in node:
                raise _Unsupported("contains evaluates the items that match it, which depends on their values")
        for i, x in enumerate(node.get("allOf", []) if isinstance(node.get("allOf"), list) else []):
            self._collect_evaluated(x, ctx.at("allOf", i), props, ev, seen)
        for kw in ("$ref", "$dynamicRef", "$recursiveRef"):
            if isinstance(node.get(kw), str):
                value = node[kw] if kw == "$ref" else self._dynamic_target(node, kw, node[kw], ctx)
                if value is None:
                    raise _Unsupported(f"{kw} with a dynamic scope")
                target, tctx = self.resolver.resolve(value, ctx)
                self._collect_evaluated(target, tctx, props, ev, seen)
        varying: list[tuple[Any, _Ctx]] = []
        for kw in ("anyOf", "oneOf"):
            if isinstance(node.get(kw), list):
                varying += [(x, ctx.at(kw, i)) for i, x in enumerate(node[kw])]
        for kw in ("if", "then", "else"):
            if kw in node:
                varying.append((node[kw], ctx.at(kw)))
        deps = node.get("dependentSchemas")
        if isinstance(deps, dict):
            varying += [(x, ctx.at("dependentSchemas", k)) for k, x in deps.items()]
        for x, xctx in varying:
            inner = _Evaluated()
            self._collect_evaluated(x, xctx, props, inner, seen)
            if inner.everything or inner.names or inner.patterns or inner.items:
                raise _Unsupported(f"what {xctx.pointer} evaluates depends on whether it matches the instance")

    def _types(self, node: dict[str, Any], ctx: _Ctx) -> set[str]:
        allowed = {"null", "boolean", "integer", "number", "string", "array", "object"}
        t = node.get("type")
        if t is None:
            return allowed
        names = [t] if isinstance(t, str) else t
        if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
            raise SchemaError("type must be a string or an array of strings", ctx.at("type").pointer)
        out: set[str] = set()
        for x in names:
            if x == "any" and ctx.draft <= 4:
                return allowed
            if x not in allowed:
                raise SchemaError(f"unknown type {x!r}", ctx.at("type").pointer)
            out.add(x)
        return out

    def _local(self, node: dict[str, Any], ctx: _Ctx, types: set[str]) -> Schema:
        """The type-specific keywords of one schema object (no applicators)."""
        num = bottom("num")
        if "number" in types:
            num = top("num")
        elif "integer" in types:
            num = atom("num", "int") if ctx.draft > 4 else atom("num", "range", None, True, None, True, 2)
        if not num.is_bottom:
            num = land("num", num, self._number(node, ctx))
            self.where.setdefault(num, ctx.pointer)
        strl = top("str") if "string" in types else bottom("str")
        if not strl.is_bottom:
            strl = land("str", strl, self._string(node, ctx))
            self.where.setdefault(strl, ctx.pointer)
        arrs = [a for a in [self._array(node, ctx)] if a is not None] if "array" in types else []
        objs = [o for o in [self._object(node, ctx)] if o is not None] if "object" in types else []
        bools = frozenset({True, False}) if "boolean" in types else frozenset()
        return self.schema_of(null="null" in types, bools=bools,
                              num=num, str=strl, arrs=arrs, objs=objs)

    # numbers ---------------------------------------------------
    def _num_value(self, node: dict[str, Any], kw: str, ctx: _Ctx) -> Decimal | None:
        v = node.get(kw)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float, Decimal)) or (
                isinstance(v, float) and not math.isfinite(v)):
            raise SchemaError(f"{kw} must be a number", ctx.at(kw).pointer)
        return jf.to_decimal(v)

    def _number(self, node: dict[str, Any], ctx: _Ctx) -> Lang:
        conds: list[Lang] = []
        lo, hi = self._num_value(node, "minimum", ctx), self._num_value(node, "maximum", ctx)
        lo_incl = hi_incl = True
        if ctx.draft <= 4:
            if node.get("exclusiveMinimum") is True:
                lo_incl = False
            if node.get("exclusiveMaximum") is True:
                hi_incl = False
        else:
            for kw, lower in (("exclusiveMinimum", True), ("exclusiveMaximum", False)):
                v = self._num_value(node, kw, ctx)
                if v is not None:
                    conds.append(atom("num", "range", v, False, None, True, 0) if lower
                                 else atom("num", "range", None, True, v, False, 0))
        if lo is not None or hi is not None:
            conds.append(atom("num", "range", lo, lo_incl, hi, hi_incl, 0))
        q = self._num_value(node, "multipleOf", ctx)
        if q is not None:
            if q <= 0:
                raise SchemaError("multipleOf must be positive", ctx.at("multipleOf").pointer)
            if jf.multiple_of_states(q) > jf.MAX_MULTIPLE_STATES:
                self.unsupported("multipleOf", ctx, f"multipleOf {q} needs too large an automaton")
            else:
                conds.append(atom("num", "mult", q))
        return land("num", *conds)

    # strings ---------------------------------------------------
    def _count(self, node: dict[str, Any], kw: str, ctx: _Ctx) -> int | None:
        v = node.get(kw)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float, Decimal)) or v < 0 or v != int(v):
            raise SchemaError(f"{kw} must be a non-negative integer", ctx.at(kw).pointer)
        return int(v)

    def _string(self, node: dict[str, Any], ctx: _Ctx) -> Lang:
        conds: list[Lang] = []
        lo, hi = self._count(node, "minLength", ctx), self._count(node, "maxLength", ctx)
        if lo is not None or hi is not None:
            conds.append(atom("str", "len", lo or 0, hi))
        pattern = node.get("pattern")
        if pattern is not None:
            if not isinstance(pattern, str):
                raise SchemaError("pattern must be a string", ctx.at("pattern").pointer)
            try:
                jf.check_pattern(pattern)
                conds.append(atom("str", "pattern", pattern))
            except RegexError as e:
                self.unsupported("pattern", ctx, str(e))
        if ctx.draft <= 7:  # draft 7 lets validators assert these; later drafts make them annotations
            if "contentMediaType" in node:
                self.unsupported("contentMediaType", ctx, "content of encoded documents is not checked")
            enc = node.get("contentEncoding")
            if enc == "base64":
                conds.append(atom("str", "format", "base64"))
            elif enc is not None:
                self.unsupported("contentEncoding", ctx, f"encoding {enc!r} is not supported")
        fmt = node.get("format")
        if isinstance(fmt, str) and self.opt.assert_format:
            if fmt in jf.FORMATS:
                conds.append(atom("str", "format", fmt))
            elif fmt in jf.UNSUPPORTED_FORMATS:
                self.unsupported("format", ctx, f"format {fmt!r} is not supported")
            # other format names are annotations (JSON Schema: unknown formats do not constrain)
        return land("str", *conds)

    # arrays ----------------------------------------------------
    def _array(self, node: dict[str, Any], ctx: _Ctx) -> Arr | None:
        d = ctx.draft
        prefix: list[Schema] = []
        items: Schema | None = None
        it = node.get("items")
        if "prefixItems" in node and d >= 2020:
            pi = node["prefixItems"]
            if not isinstance(pi, list):
                raise SchemaError("prefixItems must be an array", ctx.at("prefixItems").pointer)
            prefix = [self.sub(x, ctx.at("prefixItems", i)) for i, x in enumerate(pi)]
        if isinstance(it, list):  # the tuple form of drafts up to 2019-09
            prefix = [self.sub(x, ctx.at("items", i)) for i, x in enumerate(it)]
            if "additionalItems" in node:
                items = self.sub(node["additionalItems"], ctx.at("additionalItems"))
        elif it is not None:
            items = self.sub(it, ctx.at("items"))
        contains: list[tuple[Schema, int, int | None]] = []
        if "contains" in node and d >= 6:
            c = self.sub(node["contains"], ctx.at("contains"))
            lo = self._count(node, "minContains", ctx) if d >= 2019 else None
            hi = self._count(node, "maxContains", ctx) if d >= 2019 else None
            contains.append((c, 1 if lo is None else lo, hi))
        lo_items, hi_items = self._count(node, "minItems", ctx) or 0, self._count(node, "maxItems", ctx)
        a = self.arr(prefix, items, lo_items, hi_items, contains)
        if node.get("uniqueItems") is True and a is not None and not (a.max_items is not None and a.max_items <= 1):
            values = self._finite_values(a.items) if not (a.prefix or a.contains) else None
            if values is None:
                self.unsupported("uniqueItems", ctx, "uniqueness of array elements is enforced only for items "
                                 f"that are one of at most {MAX_UNIQUE_VALUES} scalar values (enum, const, boolean, "
                                 "null), without prefixItems or contains")
                return a
            hi = len(values) if a.max_items is None else min(a.max_items, len(values))
            if a.min_items > hi:
                return None
            return self._mk(Arr, (), a.items, a.min_items, hi, (), tuple(values))  # type: ignore[no-any-return]
        return a

    def _finite_values(self, s: Schema) -> list[Schema] | None:
        """One schema per JSON value of ``s`` if it is a few scalars (what finite ``uniqueItems`` needs)."""
        if s.arrs or s.objs or s.refs:
            return None
        out = [self.schema_of(null=True)] if s.null else []
        out += [self.schema_of(bools=frozenset({b})) for b in sorted(s.bools)]
        for lang, kind in ((s.num, "num"), (s.str, "str")):
            if lang.is_bottom:
                continue
            if not (lang.op == "atom" and lang.args[0] == "lits"):
                return None
            groups: dict[Any, set[Any]] = {}  # numbers by value: 1 and 1.0 are one value
            for v in lang.args[1]:
                groups.setdefault(v[0] if kind == "num" else v, set()).add(v)
            for _, vs in sorted(groups.items(), key=lambda kv: repr(kv[0])):
                one = atom(kind, "lits", frozenset(vs))
                out.append(self.schema_of(num=one) if kind == "num" else self.schema_of(str=one))
        return out if len(out) <= MAX_UNIQUE_VALUES else None

    # objects ---------------------------------------------------
    def _object(self, node: dict[str, Any], ctx: _Ctx) -> Obj | None:
        props_node = node.get("properties", {})
        if not isinstance(props_node, dict):
            raise SchemaError("properties must be an object", ctx.at("properties").pointer)
        pats_node = node.get("patternProperties", {})
        if not isinstance(pats_node, dict):
            raise SchemaError("patternProperties must be an object", ctx.at("patternProperties").pointer)
        patterns: list[tuple[Lang, Schema]] = []
        for p, sub in pats_node.items():
            try:
                jf.check_pattern(p)
            except RegexError as e:
                self.unsupported("patternProperties", ctx, str(e))
                continue
            patterns.append((atom("str", "pattern", p), self.sub(sub, ctx.at("patternProperties", p))))
        additional = self.TRUE
        if "additionalProperties" in node:
            additional = self.sub(node["additionalProperties"], ctx.at("additionalProperties"))
        names = top("str")
        if "propertyNames" in node and ctx.draft >= 6:
            pn = self.direct(self.translate(node["propertyNames"], ctx.at("propertyNames")))
            names = pn.str
        props: list[tuple[str, Schema]] = []
        for k, sub in props_node.items():
            v = self.sub(sub, ctx.at("properties", k))
            for lang, ps in patterns:
                if jf.contains(lang, k):
                    v = self.meet(v, ps)
            if not names.is_top and not jf.contains(names, k):
                v = self.FALSE
            props.append((k, v))
        extra = [(land("str", k, names), v) for k, v in self._key_classes(patterns, additional, ctx)]
        required = node.get("required", [])
        if not isinstance(required, list) or not all(isinstance(x, str) for x in required):
            if isinstance(required, bool) and ctx.draft <= 4:
                required = []  # draft 3 style, meaningless in draft 4
            else:
                raise SchemaError("required must be an array of strings", ctx.at("required").pointer)
        return self.obj(props, frozenset(required), extra, self._count(node, "minProperties", ctx) or 0,
                        self._count(node, "maxProperties", ctx))

    def _key_classes(self, patterns: list[tuple[Lang, Schema]], additional: Schema,
                     ctx: _Ctx) -> list[tuple[Lang, Schema]]:
        """Disjoint (key language, value schema) classes for keys not named in ``properties``.

        Keys are split by the set of patterns they match, one pattern at a time, keeping only non-empty
        cells: patterns are mostly disjoint (distinct prefixes), so n patterns give about n + 1 cells, not
        2**n. A key matching no pattern takes ``additional``; one matching several, the meet of their schemas.
        """
        if not patterns or all(s is additional for _, s in patterns):
            return [(top("str"), additional)]
        cells: list[tuple[Lang, tuple[int, ...]]] = [(top("str"), ())]
        for i, (lang, _) in enumerate(patterns):
            other = lnot(lang)
            split: list[tuple[Lang, tuple[int, ...]]] = []
            for keys, matched in cells:
                for k, m in ((land("str", keys, lang), (*matched, i)), (land("str", keys, other), matched)):
                    if not jf.is_empty(k):
                        split.append((k, m))
            if len(split) > MAX_KEY_CLASSES:
                raise SchemaError(f"patternProperties overlap in more than {MAX_KEY_CLASSES} ways",
                                  ctx.at("patternProperties").pointer)
            cells = split
        classes: dict[int, list[Lang]] = {}  # value schema id -> key languages
        values: dict[int, Schema] = {}
        for keys, matched in cells:
            value = additional
            if matched:
                value = self.TRUE
                for i in matched:
                    value = self.meet(value, patterns[i][1])
            if value.is_false:
                continue
            classes.setdefault(id(value), []).append(keys)
            values[id(value)] = value
        return [(lor("str", *ks), values[v]) for v, ks in classes.items()]

    # enum / const ----------------------------------------------
    def _enum(self, node: dict[str, Any], ctx: _Ctx) -> Schema:
        values: list[Any] = []
        if "enum" in node:
            if not isinstance(node["enum"], list):
                raise SchemaError("enum must be an array", ctx.at("enum").pointer)
            values = list(node["enum"])
            if "const" in node and ctx.draft >= 6:
                return self.intersect(self.union([self.const(v) for v in values]), self.const(node["const"]))
        elif ctx.draft >= 6:
            values = [node["const"]]
        else:
            return self.TRUE
        return self.union([self.const(v) for v in values])

    def const(self, v: Any) -> Schema:
        """Exactly the JSON value ``v`` (numbers by value: 1 and 1.0 are equal; objects in any key order)."""
        if v is None:
            return self.schema_of(null=True)
        if isinstance(v, bool):
            return self.schema_of(bools=frozenset({v}))
        if isinstance(v, (int, float, Decimal)):
            if isinstance(v, float) and not math.isfinite(v):
                return self.FALSE
            text = json.dumps(v) if not isinstance(v, Decimal) else None
            return self.schema_of(num=atom("num", "lits", frozenset({(jf.to_decimal(v), text)})))
        if isinstance(v, str):
            return self.schema_of(str=atom("str", "lits", frozenset({v})))
        if isinstance(v, list):
            a = self.arr([self.const(x) for x in v], self.FALSE, len(v), len(v), ())
            return self.schema_of(arrs=[a] if a else [])
        if isinstance(v, dict):
            o = self.obj([(k, self.const(x)) for k, x in v.items()], frozenset(v), (), 0, None)
            return self.schema_of(objs=[o] if o else [])
        raise SchemaError(f"not a JSON value: {v!r}")

    # applicators -------------------------------------------------
    def _one_of(self, schemas: list[Schema], siblings: list[Schema], ctx: _Ctx) -> Schema:
        """``oneOf``: exact when the branches are provably disjoint, or via complements; else refused."""
        n = len(schemas)
        if n == 1:
            return schemas[0]
        try:
            if all(self.is_empty(self.intersect(schemas[i], schemas[j])) for i in range(n) for j in range(i + 1, n)):
                return self.union(schemas)
            ctx_schema = self.TRUE
            for s in siblings:
                ctx_schema = self.intersect(ctx_schema, s)
            narrowed = [self.intersect(ctx_schema, s) for s in schemas]
            if all(self.is_empty(self.intersect(narrowed[i], narrowed[j])) for i in range(n) for j in range(i + 1, n)):
                return self.union(narrowed)
            try:  # S and B_i and not B_j == S and B_i and not (S and B_j): complement the simpler one
                negs = [self.complement(s) for s in schemas]
            except _Cycle:
                raise
            except _Unsupported:
                negs = [self.complement(s) for s in narrowed]
            branches = []
            for i in range(n):
                b = narrowed[i]
                for j in range(n):
                    if j != i:
                        b = self.intersect(b, negs[j])
                branches.append(b)
            return self.union(branches)
        except _Cycle:
            raise
        except _Unsupported as e:
            self.unsupported("oneOf", ctx, f"branches may overlap and {e}")
            return self.union(schemas)

    def _if_then_else(self, node: dict[str, Any], ctx: _Ctx) -> Schema:
        cond = self.translate(node["if"], ctx.at("if"))
        then = self.translate(node.get("then", True), ctx.at("then"))
        other = self.translate(node.get("else", True), ctx.at("else"))
        if then is self.TRUE and other is self.TRUE:
            return self.TRUE
        try:
            neg = self.complement(cond)
        except _Cycle:
            raise
        except _Unsupported as e:
            self.unsupported("if", ctx, str(e))
            return self.union([self.intersect(cond, then), other])
        return self.union([self.intersect(cond, then), self.intersect(neg, other)])

    def _dependencies(self, node: dict[str, Any], ctx: _Ctx) -> list[Schema]:
        """``dependentRequired``, ``dependentSchemas`` and draft-7 ``dependencies``: (absent) or (present and X)."""
        out: list[Schema] = []
        for kw in ("dependentRequired", "dependentSchemas", "dependencies"):
            deps = node.get(kw)
            if deps is None or (kw != "dependencies" and ctx.draft < 2019):
                continue
            if not isinstance(deps, dict):
                raise SchemaError(f"{kw} must be an object", ctx.at(kw).pointer)
            for name, dep in deps.items():
                if isinstance(dep, list):
                    then = self.schema_of(objs=[o for o in [self.obj((), frozenset(dep), None, 0, None)] if o])
                else:
                    then = self.translate(dep, ctx.at(kw, name))
                absent = self.obj([(name, self.FALSE)], frozenset(), None, 0, None)
                present = self.obj([(name, self.TRUE)], frozenset({name}), None, 0, None)
                non_objects = self.schema_of(null=True, bools=frozenset({True, False}), num=top("num"),
                                             str=top("str"), arrs=self.TRUE.arrs)
                out.append(self.union([non_objects, self.schema_of(objs=[absent] if absent else []),
                                       self.intersect(self.schema_of(objs=[present] if present else []), then)]))
        return out


# ================================================================ grammar emission
class _Emitter:
    """Grammar rules for :class:`Schema` values (memoised per schema, and per depth when indenting)."""

    def __init__(self, conv: _Converter, opt: Options) -> None:
        self.c = conv
        self.opt = opt
        self.b = GrammarBuilder()
        self._values: dict[tuple[int, int], Symbol] = {}
        self._refs: dict[tuple[Hashable, int], N] = {}
        self._langs: dict[Lang, T] = {}
        self._literals: dict[str, T] = {}
        self._containers: dict[tuple[int, int], N] = {}
        self._pending: list[tuple[N, Ref, int]] = []
        self._k = 0
        flexible = opt.whitespace == "flexible" and opt.indent is None
        self.ws = f"[ \\t\\n\\r]{{0,{opt.max_whitespace}}}" if flexible else None

    def rule(self, base: str) -> N:
        """A new nonterminal with a unique name (the builder's own renaming is quadratic)."""
        self._k += 1
        return self.b.rule(f"{base}_{self._k}")

    def define(self, base: str, *alternatives: Sequence[Symbol]) -> N:
        return self.b.add(self.rule(base), *alternatives)

    def exactly(self, sym: Symbol, n: int) -> list[Symbol]:
        """``sym`` n times, in O(log n) rules (binary doubling)."""
        if n <= 4:
            return [sym] * n
        half = self.define("twice", self.exactly(sym, n // 2) * 2)
        return [half, *([sym] if n % 2 else [])]

    def at_most(self, sym: Symbol, m: int, base: int = 8) -> list[Symbol]:
        """``sym`` 0 to m times, unambiguously, in O(base * log m) rules (mixed-radix counting)."""
        if m <= 0:
            return []
        if m < base:
            tail: Symbol | None = None
            for _ in range(m):
                tail = self.define("opt", [], [sym] if tail is None else [sym, tail])
            return [tail] if tail is not None else []
        block = self.define("block", [sym] * base)
        q, r = divmod(m, base)
        low = self.define("upto", [*self.at_most(block, q - 1, base), *self.at_most(sym, base - 1, base)],
                          [*self.exactly(block, q), *self.at_most(sym, r, base)])
        return [low]

    def literal(self, text: str) -> T:
        t = self._literals.get(text)
        if t is None:
            try:
                t = self.b.terminal(literal_dfa(text.encode("utf-8")))
            except UnicodeEncodeError:  # a lone surrogate (a key in \\u escapes): the regex path decides
                t = self.b.literal(text)
            self._literals[text] = t
        return t

    # punctuation -------------------------------------------------
    def punct(self, text: str, depth: int = 0) -> T:
        """A structural token, with bounded whitespace (flexible) or exact indentation (indent)."""
        if self.opt.indent is not None:
            ind = " " * self.opt.indent
            if text in "{[":
                return self.literal(text + "\n" + ind * (depth + 1))
            if text in "}]":
                return self.literal("\n" + ind * depth + text)
            if text == ",":
                return self.literal(",\n" + ind * (depth + 1))
            if text == ":":
                return self.literal(": ")
            return self.literal(text)
        if self.ws is None:
            return self.literal(text)
        import re

        esc = re.escape(text)
        ws = self.ws
        forms = {"{": f"{esc}{ws}", "[": f"{esc}{ws}", "}": f"{ws}{esc}", "]": f"{ws}{esc}"}
        pattern = forms.get(text, f"{ws}{esc}{ws}")
        return self.b.terminal(pattern)

    def empty(self, text: str) -> list[Symbol]:
        if self.opt.indent is not None:
            return [self.literal(text)]
        return [self.punct(text[0]), self.punct(text[1])]

    # values ----------------------------------------------------------
    def value(self, s: Schema, depth: int) -> Symbol:
        d = depth if self.opt.indent is not None else 0
        key = (id(s), d)
        hit = self._values.get(key)
        if hit is not None:
            return hit
        alts: list[list[Symbol]] = []
        if s.null:
            alts.append([self.literal("null")])
        for v in sorted(s.bools, reverse=True):
            alts.append([self.literal("true" if v else "false")])
        if not s.num.is_bottom:
            alts.append([self.lang(s.num)])
        if not s.str.is_bottom:
            alts.append([self.string(s.str)])
        if not (s.arrs or s.objs or s.refs) and len(alts) == 1:
            self._values[key] = alts[0][0]
            return alts[0][0]
        nt = self.rule("value")  # registered before recursing: schemas may contain themselves
        self._values[key] = nt
        if self.opt.indent is None or depth <= self.opt.max_depth:
            alts += [[self.array(a, depth)] for a in s.arrs]
            alts += [[self.obj(o, depth)] for o in s.objs]
        alts += [[self.ref(r, depth)] for r in s.refs]
        self.b.add(nt, *(alts or [[nt]]))  # an empty schema: an unproductive rule, removed by the engine
        return nt

    def ref(self, r: Ref, depth: int) -> N:
        d = depth if self.opt.indent is not None else 0
        key = (r.key, d)
        hit = self._refs.get(key)
        if hit is None:
            hit = self.rule(f"ref_{r.label}"[:40])
            self._refs[key] = hit
            self._pending.append((hit, r, depth))
        return hit

    def flush(self) -> None:
        """Define the references used so far (breadth first, so recursion terminates)."""
        while self._pending:
            nt, r, depth = self._pending.pop()
            try:
                target = self.c.resolve(r)
            except _Unsupported as e:
                raise SchemaError(str(e), "") from None
            self.b.add(nt, [self.value(target, depth)])

    def lang(self, x: Lang) -> T:
        t = self._langs.get(x)
        if t is None:
            try:
                t = self.b.terminal(jf.terminal_def(x))
            except (LimitError, RecursionError) as e:
                raise SchemaError(f"constraint too large to enforce exactly ({e})", self.c.where.get(x, "")) from None
            self._langs[x] = t
        return t

    def string(self, x: Lang) -> Symbol:
        """A string value; long length bounds are counted in chunks by the grammar (small DFAs)."""
        if not (x.op == "atom" and x.args[0] == "len"):
            return self.lang(x)
        lo, hi = x.args[1], x.args[2]
        if (hi if hi is not None else lo) <= LONG_STRING:
            return self.lang(x)
        quote = self.literal('"')
        chunk = self.b.terminal(Repeat(jf.ENC_CHAR, CHUNK, CHUNK))

        def tail(a: int, b: int) -> list[Symbol]:
            """The last 0-31 characters and the closing quote, one lexeme: it can only end at a quote, not
            after every character (every long token would cross a lexeme boundary there)."""
            return [quote] if b <= 0 else [self.b.terminal(Seq((Repeat(jf.ENC_CHAR, a, b), literal('"'))))]

        # length = CHUNK * q + r with 0 <= r < CHUNK, split by q: q == qa, qa < q < qb, q == qb
        qa = lo // CHUNK
        alts: list[list[Symbol]] = []
        if hi is None:
            alts.append([*self.exactly(chunk, qa), *tail(lo - qa * CHUNK, CHUNK - 1)])
            more = self.rule("chunks")
            self.b.add(more, [], [more, chunk])
            alts.append([*self.exactly(chunk, qa + 1), more, *tail(0, CHUNK - 1)])
        else:
            qb = hi // CHUNK
            if qa == qb:
                alts.append([*self.exactly(chunk, qa), *tail(lo - qa * CHUNK, hi - qa * CHUNK)])
            else:
                alts.append([*self.exactly(chunk, qa), *tail(lo - qa * CHUNK, CHUNK - 1)])
                if qb - qa >= 2:
                    alts.append([*self.exactly(chunk, qa + 1), *self.at_most(chunk, qb - qa - 2),
                                 *tail(0, CHUNK - 1)])
                alts.append([*self.exactly(chunk, qb), *tail(0, hi - qb * CHUNK)])
        body = self.define("long_string_body", *alts)  # closing quote included
        return self.define("long_string", [quote, body])

    def key(self, name: str) -> list[Symbol]:
        """A literal key followed by the key separator (one terminal in compact form)."""
        text = encode_basestring(name)  # json.dumps(name, ensure_ascii=False), without its overhead
        if self.ws is None and self.opt.indent is None:
            return [self.literal(text + ":")]
        return [self.literal(text), self.punct(":")]

    # containers --------------------------------------------------------
    def _machine(self, start: State, step: Callable[[State], list[tuple[State, list[Symbol] | None]]],
                 final: Callable[[State], bool], name: str) -> list[tuple[State, N]]:
        """Left-recursive rules for the strings of a finite machine: ``N_s`` derives everything that leads from
        ``start`` to ``s``; ``step(s)`` lists (next state, symbols or None for an epsilon move).
        Returns the final states with their nonterminals (states that cannot reach a final are dropped)."""
        states = [start]
        seen = {start}
        edges: list[tuple[State, State, list[Symbol] | None]] = []
        i = 0
        while i < len(states):
            s = states[i]
            i += 1
            for t, syms in step(s):
                edges.append((s, t, syms))
                if t not in seen:
                    seen.add(t)
                    states.append(t)
                    if len(states) > MAX_STATES:
                        raise SchemaError(f"object or array needs more than {MAX_STATES} grammar states")
        # states that reach a final one: backwards from the finals over the edges (linear; a pass over the
        # edges until nothing changes took one pass per state of a chain of optional properties)
        preds: dict[State, list[State]] = {}
        for s, t, _ in edges:
            preds.setdefault(t, []).append(s)
        live = {s for s in states if final(s)}
        todo = list(live)
        while todo:
            for p in preds.get(todo.pop(), ()):
                if p not in live:
                    live.add(p)
                    todo.append(p)
        if start not in live:
            return []
        nts = {s: self.rule(name) for s in states if s in live}
        self.b.add(nts[start], [])
        for s, t, syms in edges:
            if s in live and t in live:
                self.b.add(nts[t], [nts[s], *(syms or [])])
        return [(s, nts[s]) for s in states if s in live and final(s)]

    def array(self, a: Arr, depth: int) -> N:
        """The rule of arrays ``a``, registered before its body is built (the body may contain ``a`` again:
        the "any value" schema does, and was emitted twice)."""
        key = (id(a), depth if self.opt.indent is not None else 0)
        rule = self._containers.get(key)
        if rule is None:
            rule = self._containers[key] = self.rule("array")
            self._array(a, depth, rule)
        return rule

    def obj(self, o: Obj, depth: int) -> N:
        key = (id(o), depth if self.opt.indent is not None else 0)
        rule = self._containers.get(key)
        if rule is None:
            rule = self._containers[key] = self.rule("object")
            self._obj(o, depth, rule)
        return rule

    def _array(self, a: Arr, depth: int, rule: N) -> None:
        cap_i = a.max_items if a.max_items is not None else max(len(a.prefix), a.min_items, 1)
        if len(a.contains) > 1:
            raise SchemaError("more than one contains constraint on one array is not supported")
        cont = a.contains[0] if a.contains else None
        c_schema, c_lo, c_hi = cont if cont is not None else (self.c.TRUE, 0, None)
        c_cap = c_hi + 1 if c_hi is not None else c_lo
        c_yes: dict[int, Schema] = {}
        c_no: dict[int, Schema] = {}
        comma = self.punct(",", depth)

        def elem_schema(i: int) -> Schema:
            return a.prefix[i] if i < len(a.prefix) else a.items

        def step(state: State) -> list[tuple[State, list[Symbol] | None]]:
            i, c = state
            if a.max_items is not None and i >= a.max_items:
                return []
            if a.unique is not None:  # c: the set of values used so far, as bits
                sep = [comma] if i > 0 else []
                return [((i + 1, c | 1 << k), [*sep, self.value(v, depth + 1)])
                        for k, v in enumerate(a.unique) if not c >> k & 1]
            e = elem_schema(i)
            if e.is_false:
                return []
            ni = min(i + 1, cap_i) if a.max_items is None else i + 1
            sep = [comma] if i > 0 else []
            if cont is None:
                return [((ni, 0), [*sep, self.value(e, depth + 1)])]
            out: list[tuple[State, list[Symbol] | None]] = []
            if id(e) not in c_yes:
                c_yes[id(e)] = self.c.meet(e, c_schema)
                try:
                    c_no[id(e)] = e if c_hi is None else self.c.meet(e, self.c.negate(c_schema))
                except _Unsupported as ex:
                    raise SchemaError(f"maxContains needs the complement of contains: {ex}") from None
            nc = c + 1
            if c_hi is None:
                nc = min(nc, c_cap)
            if nc <= c_cap and (c_hi is None or nc <= c_hi):
                out.append(((ni, nc), [*sep, self.value(c_yes[id(e)], depth + 1)]))
            out.append(((ni, c), [*sep, self.value(c_no[id(e)], depth + 1)]))
            return out

        def final(state: State) -> bool:
            i, c = state
            return bool(i >= a.min_items and (cont is None or c >= cont[1]))

        finals = self._machine((0, 0), step, final, "array_items")
        if not finals:
            self.b.add(rule, [rule])
        for (i, _), nt in finals:
            if i == 0:
                self.b.add(rule, self.empty("[]"))
            else:
                self.b.add(rule, [self.punct("[", depth), nt, self.punct("]", depth)])

    def _obj(self, o: Obj, depth: int, rule: N) -> None:
        named = [(k, v) for k, v in o.props if not v.is_false]
        unnamed = lnot(atom("str", "lits", frozenset(k for k, _ in o.props))) if o.props else top("str")
        # extra members: (symbols, witnesses they satisfy); a key may satisfy several witnesses at once
        extras: list[tuple[list[Symbol], int]] = []
        nw = len(o.witness)
        for lang, v in o.extra:
            for wset in range(1 << nw):
                k = land("str", lang, unnamed, *(o.witness[j][0] for j in range(nw) if wset >> j & 1))
                val = v
                for j in range(nw):
                    if wset >> j & 1:
                        val = self.c.meet(val, o.witness[j][1])
                if val.is_false or jf.is_empty(k):
                    continue
                extras.append(([self.string(k), self.punct(":", depth), self.value(val, depth + 1)], wset))
        pairs = [[*self.key(k), self.value(v, depth + 1)] for k, v in named]
        required = [k in o.required for k, _ in named]
        n = len(named)
        all_w = (1 << nw) - 1
        cap = o.max_props if o.max_props is not None else max(o.min_props, 1)
        if o.max_props is not None and not extras and o.max_props >= n:
            cap = max(o.min_props, 1)
        bounded = o.max_props is not None and cap == o.max_props
        comma = self.punct(",", depth)

        def bump(c: int) -> int | None:
            c += 1
            if bounded:
                return c if c <= cap else None
            return min(c, cap)

        any_order = self.opt.any_order and (n > 1 or (n == 1 and bool(extras)))  # extras may come first too
        if any_order and (1 << n) * (cap + 1) * (all_w + 1) > MAX_STATES:
            raise SchemaError(f"any_order with {n} properties needs too many grammar states")

        def step(state: State) -> list[tuple[State, list[Symbol] | None]]:
            # any_order: pos is the set of named properties used; else the index of the next one
            pos, c, w = state
            out: list[tuple[State, list[Symbol] | None]] = []
            nc = bump(c)
            sep = [comma] if c > 0 else []
            if any_order:
                if nc is not None:
                    out += [((pos | 1 << j, nc, w), [*sep, *pairs[j]]) for j in range(n) if not pos >> j & 1]
            elif pos < n:
                if not required[pos]:
                    out.append(((pos + 1, c, w), None))
                if nc is not None:
                    out.append(((pos + 1, nc, w), [*sep, *pairs[pos]]))
                return out
            if nc is not None:
                out += [((pos, nc, w | ws), [*sep, *syms]) for syms, ws in extras]
            return out

        def final(state: State) -> bool:
            pos, c, w = state
            if any_order:
                done = all(pos >> j & 1 for j in range(n) if required[j])
            else:
                done = pos == n
            return bool(done and c >= o.min_props and w == all_w)

        finals = self._machine((0, 0, 0), step, final, "object_members")
        if not finals:
            self.b.add(rule, [rule])
        for (_, c, _), nt in finals:
            if c == 0:
                self.b.add(rule, self.empty("{}"))
            else:
                self.b.add(rule, [self.punct("{", depth), nt, self.punct("}", depth)])

    def build(self, root: Schema) -> Grammar:
        if self.c.is_empty(root):
            raise SchemaError("the schema matches no JSON value", "")
        top_sym = self.value(root, 0)
        self.flush()
        start = self.rule("start")
        if self.ws is not None:
            lead = self.b.terminal(f"[ \\t\\n\\r]{{1,{self.opt.max_whitespace}}}")
            opt_ws = self.define("ws", [], [lead])
            self.b.add(start, [opt_ws, top_sym, opt_ws])
        else:
            self.b.add(start, [top_sym])
        return self.b.build(start, source="json_schema")


# ================================================================ public entry point
def schema_to_grammar(
    schema: Any,
    *,
    whitespace: str = "compact",
    max_whitespace: int = 20,
    indent: int | None = None,
    any_order: bool = False,
    strict: bool = True,
    draft: int | str | None = None,
    resources: dict[str, Any] | None = None,
    max_depth: int = 32,
    assert_format: bool = True,
) -> Grammar:
    """The grammar of the JSON texts that are valid under ``schema`` (a dict, bool, JSON string, or
    pydantic model class), written in the chosen form.

    Options:

    * ``whitespace``: ``"compact"`` (default): no whitespace at all, like
      ``json.dumps(x, separators=(",", ":"), ensure_ascii=False)``. ``"flexible"``: whitespace around every
      structural character and around the value, at most ``max_whitespace`` characters per run (so a model
      can never emit whitespace until its token limit).
    * ``indent``: exactly ``json.dumps(x, indent=indent, ensure_ascii=False)`` layout (overrides
      ``whitespace``); containers nested deeper than ``max_depth`` are not generated.
    * ``any_order``: properties in any order (each at most once); by default they come in the schema's
      order, optional ones may be skipped, and properties not named in ``properties`` come after them.
    * ``strict``: refuse (``SchemaError`` naming the keyword and its JSON pointer) what cannot be enforced
      exactly; with ``strict=False`` such keywords are relaxed (the grammar accepts more) and each is named
      in a :class:`SchemaRelaxedWarning`.
    * ``draft``: 4, 6, 7, 2019, 2020 or a ``$schema`` URI; by default the schema's ``$schema``, else
      2020-12. Older drafts follow their own rules (``$ref`` siblings ignored up to draft 7, boolean
      ``exclusiveMinimum`` in draft 4, and so on); the tuple form of ``items`` is accepted in every draft.
    * ``resources``: other schema documents by URI, for ``$ref`` to them.
    * ``assert_format``: enforce ``format`` (default); False treats it as an annotation, as JSON Schema
      2020-12 does by default.

    Exactness (see also :mod:`constrain.json_formats`): strings are written as ``json.dumps`` writes them
    (escapes only where needed); ``minLength``/``maxLength`` count code points; ``pattern`` is an ECMA-262
    search; formats date, time, date-time, duration, email, hostname, ipv4, ipv6, uuid, uri, uri-reference,
    json-pointer and relative-json-pointer are enforced (hostname A-labels, and leap seconds written with a
    non-zero offset, are refused: a sound subset), other format names are annotations. Numbers: bounds,
    ``multipleOf`` and ``const``/``enum`` are exact over exponent-free spellings; unconstrained numbers also
    take exponents. ``uniqueItems`` (unless at most one item or a few scalar values), ``unevaluated*``
    (unless what is evaluated follows from the schema, its ``allOf`` and references), overlapping
    ``oneOf`` branches or ``not`` of what has no complement here are refused. Annotations
    (title, description, default, examples, ``$comment``, ``readOnly``, ...) and unknown keywords are
    ignored, as JSON Schema prescribes. OpenAPI's ``nullable: true`` adds null.
    """
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        schema = schema.model_json_schema()
    elif isinstance(schema, (str, bytes)):
        schema = json.loads(schema)
    if whitespace not in ("compact", "flexible"):
        raise ValueError(f"whitespace must be 'compact' or 'flexible', not {whitespace!r}")
    d = draft_of(draft) if isinstance(draft, str) else draft
    if draft is not None and d not in (4, 6, 7, 2019, 2020):
        raise ValueError(f"unknown draft {draft!r}")
    opt = Options(whitespace, max_whitespace, indent, any_order, strict, d, max_depth, assert_format)
    try:
        conv = _Converter(schema, opt, resources or {})
    except _Unsupported as e:
        raise SchemaError(str(e), "") from None
    except (InvalidOperation, RecursionError, LimitError) as e:
        raise SchemaError(f"schema too complex ({type(e).__name__}: {e})", "") from None
    try:
        return _Emitter(conv, opt).build(conv.root)
    except _Unsupported as e:
        raise SchemaError(str(e), "") from None
    except (RecursionError, LimitError) as e:
        raise SchemaError(f"schema too complex ({type(e).__name__}: {e})", "") from None


__all__ = ["SchemaRelaxedWarning", "schema_to_grammar"]
