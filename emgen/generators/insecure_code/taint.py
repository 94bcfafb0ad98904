"""A small intra-procedural taint tracker for the AST checks that bandit lacks.

Untrusted values come from the web request (``request.args``, ``request.get_json()`` …),
from the parameters of route handlers (``@app.route``/``@router.get`` …) and from archive
member names (``infolist()``, ``getmembers()`` …). Taint flows through assignments, string
building (f-strings, ``+``, ``%``, ``.format``, ``os.path.join``, ``Path``, ``urljoin`` …),
attribute and item access and method calls on tainted values. A check names its
sanitizers (calls whose result is safe) and its validators (an ``if`` whose test matches
clears the names it tests, and what they were derived from, for the code after an ``if``
that exits: ``if not target.is_relative_to(BASE): abort(404)``). It is a heuristic for
short generated snippets, not a sound analysis of arbitrary programs.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

REQUEST_NAMES = frozenset({"request", "req"})
REQUEST_ATTRS = frozenset(
    {
        "args", "form", "values", "json", "files", "headers", "cookies", "data", "get_json", "get_data",
        "query_params", "path_params", "GET", "POST", "body", "query_string", "stream", "referrer",
        "url", "full_path", "path", "view_args",
    }
)  # fmt: skip
ROUTE_DECORATORS = frozenset({"route", "get", "post", "put", "patch", "delete", "api_route", "websocket"})
MEMBER_LISTS = frozenset({"infolist", "namelist", "getmembers", "getnames"})
PROPAGATORS = frozenset(
    {
        "join", "Path", "PurePath", "PurePosixPath", "str", "urljoin", "urlparse", "urlsplit", "abspath",
        "normpath", "realpath", "expanduser", "format", "unquote", "unquote_plus", "loads", "fspath",
    }
)  # fmt: skip
EXITS = frozenset({"abort", "exit", "fail", "deny", "forbid", "bad_request", "not_found", "reject"})


def call_name(node: ast.AST) -> str:
    """The last component of a call's function: ``os.path.join(...)`` -> ``join``."""
    func = node.func if isinstance(node, ast.Call) else node
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def dotted_name(node: ast.AST) -> str:
    """``a.b.c`` for a chain of names and attributes, else an empty string."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


@dataclass(frozen=True)
class Hit:
    line: int
    message: str


Sink = Callable[[ast.Call, Callable[[ast.AST], bool]], "str | None"]
ReturnSink = Callable[[ast.expr, Callable[[ast.AST], bool]], "str | None"]


@dataclass(frozen=True)
class TaintRules:
    sanitizers: frozenset[str]
    validator: Callable[[ast.expr], bool]
    sink: Sink
    return_sink: ReturnSink | None = None


TYPED_CONVERTER = re.compile(r"<(?:int|float|uuid):([A-Za-z_][A-Za-z0-9_]*)>")
SAFE_ANNOTATIONS = frozenset({"int", "float", "bool", "UUID", "date", "datetime"})


def route_parameters(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str] | None:
    """Untrusted parameters of a route handler (None if ``func`` is not one).

    Parameters that the framework converts to a number, UUID or date (``<int:pk>`` in the
    route, or an ``int`` annotation) carry no attacker-chosen text and are left out.
    """
    typed: set[str] = set()
    routed = False
    for decorator in func.decorator_list:
        if isinstance(decorator, ast.Call) and call_name(decorator) in ROUTE_DECORATORS:
            routed = True
            for arg in decorator.args[:1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    typed.update(TYPED_CONVERTER.findall(arg.value))
    if not routed:
        return None
    params = func.args.posonlyargs + func.args.args + func.args.kwonlyargs
    return [
        a.arg
        for a in params
        if a.arg not in ("self", "cls")
        and a.arg not in typed
        and not (a.annotation is not None and call_name(a.annotation) in SAFE_ANNOTATIONS)
    ]


class _Scope:
    """Taint state of one function body, walked statement by statement in order."""

    def __init__(self, rules: TaintRules, tainted: dict[str, frozenset[str]]) -> None:
        self.rules = rules
        self.tainted = dict(tainted)
        self.hits: list[Hit] = []

    def is_tainted(self, node: ast.AST | None) -> bool:
        if node is None:
            return False
        if isinstance(node, ast.Name):
            return node.id in self.tainted
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in REQUEST_NAMES:
                return node.attr in REQUEST_ATTRS
            return self.is_tainted(node.value)
        if isinstance(node, ast.Subscript):
            return self.is_tainted(node.value)
        if isinstance(node, ast.Call):
            name = call_name(node)
            if name in self.rules.sanitizers:
                return False
            if name in MEMBER_LISTS:
                return True
            if self.is_tainted(node.func):
                return True
            if name in PROPAGATORS or (isinstance(node.func, ast.Attribute) and self._constant(node.func.value)):
                return any(self.is_tainted(a) for a in node.args) or any(
                    self.is_tainted(k.value) for k in node.keywords
                )
            return False
        if isinstance(node, ast.JoinedStr):
            return any(self.is_tainted(v.value) for v in node.values if isinstance(v, ast.FormattedValue))
        if isinstance(node, ast.BinOp):
            return self.is_tainted(node.left) or self.is_tainted(node.right)
        if isinstance(node, ast.BoolOp):
            return any(self.is_tainted(v) for v in node.values)
        if isinstance(node, ast.IfExp):
            return self.is_tainted(node.body) or self.is_tainted(node.orelse)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return any(self.is_tainted(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            return any(self.is_tainted(v) for v in node.values)
        if isinstance(node, (ast.Await, ast.Starred, ast.FormattedValue)):
            return self.is_tainted(node.value)
        return False

    @staticmethod
    def _constant(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and isinstance(node.value, str)

    def roots(self, node: ast.AST) -> frozenset[str]:
        """Tainted names ``node`` reads, with the names they were derived from."""
        names: set[str] = set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in self.tainted:
                names.add(sub.id)
                names.update(self.tainted[sub.id])
        return frozenset(names)

    def bind(self, target: ast.AST, value_tainted: bool, derived: frozenset[str]) -> None:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                if value_tainted:
                    self.tainted[node.id] = derived
                else:
                    self.tainted.pop(node.id, None)

    def clear(self, names: frozenset[str]) -> None:
        for name in names:
            self.tainted.pop(name, None)

    def check_expr(self, node: ast.AST | None) -> None:
        if node is None:
            return
        for sub in _calls_outside_lambdas(node):
            message = self.rules.sink(sub, self.is_tainted)
            if message:
                self.hits.append(Hit(sub.lineno, message))

    def run(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.statement(stmt)

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return
        if isinstance(stmt, ast.Assign):
            self.check_expr(stmt.value)
            for target in stmt.targets:
                self.bind(target, self.is_tainted(stmt.value), self.roots(stmt.value))
        elif isinstance(stmt, ast.AnnAssign):
            self.check_expr(stmt.value)
            if stmt.value is not None:
                self.bind(stmt.target, self.is_tainted(stmt.value), self.roots(stmt.value))
        elif isinstance(stmt, ast.AugAssign):
            self.check_expr(stmt.value)
            if self.is_tainted(stmt.value):
                self.bind(stmt.target, True, self.roots(stmt.value))
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            self.check_expr(stmt.iter)
            self.bind(stmt.target, self.is_tainted(stmt.iter), self.roots(stmt.iter))
            self.run(stmt.body)
            self.run(stmt.orelse)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                self.check_expr(item.context_expr)
                if item.optional_vars is not None:
                    expr = item.context_expr
                    self.bind(item.optional_vars, self.is_tainted(expr), self.roots(expr))
            self.run(stmt.body)
        elif isinstance(stmt, ast.If):
            self.check_expr(stmt.test)
            self._if(stmt)
        elif isinstance(stmt, ast.While):
            self.check_expr(stmt.test)
            self.run(stmt.body)
            self.run(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            self.run(stmt.body)
            for handler in stmt.handlers:
                self.run(handler.body)
            self.run(stmt.orelse)
            self.run(stmt.finalbody)
        elif isinstance(stmt, ast.Return):
            self.check_expr(stmt.value)
            if stmt.value is not None and self.rules.return_sink is not None:
                message = self.rules.return_sink(stmt.value, self.is_tainted)
                if message:
                    self.hits.append(Hit(stmt.lineno, message))
        else:
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.expr):
                    self.check_expr(child)

    def _if(self, stmt: ast.If) -> None:
        tested = self.roots(stmt.test)
        if not tested or not self.rules.validator(stmt.test):
            self.run(stmt.body)
            self.run(stmt.orelse)
            return
        saved = dict(self.tainted)
        self.clear(tested)
        self.run(stmt.body)
        self.tainted = saved
        self.run(stmt.orelse)
        if _exits(stmt.body):
            self.clear(tested)


def _calls_outside_lambdas(node: ast.AST) -> Iterator[ast.Call]:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Lambda):
            continue
        if isinstance(current, ast.Call):
            yield current
        stack.extend(ast.iter_child_nodes(current))


def _exits(body: list[ast.stmt]) -> bool:
    if not body:
        return False
    last = body[-1]
    if isinstance(last, (ast.Raise, ast.Return, ast.Continue, ast.Break)):
        return True
    return isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) and call_name(last.value) in EXITS


def find_tainted_flows(tree: ast.Module, rules: TaintRules) -> list[Hit]:
    """Every sink ``rules`` recognises that receives untrusted data, in every function."""
    hits: list[Hit] = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        tainted = {name: frozenset() for name in route_parameters(node) or []}
        scope = _Scope(rules, tainted)
        scope.run(node.body)
        hits.extend(scope.hits)
    return hits
