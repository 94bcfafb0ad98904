"""AST checks for the vulnerability classes bandit does not see.

Each check takes a parsed module and returns :class:`AstFinding` values. Checks that
follow untrusted data use :mod:`taint`; the others match a pattern (a JWT decoded without
verification, a secret compared with ``==``, a regex with nested quantifiers …).
The registry :data:`CHECKS` maps a check id (as used in scenario files, ``ast:<id>``)
to its CWE and function.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

from emgen.generators.insecure_code.sinks import (
    HTML_TAG,
    HTTP_METHODS,
    OPEN_REDIRECT,
    PATH_SINK_FUNCS,
    PATH_SINK_METHODS,
    PATH_TRAVERSAL,
    REDIRECTS,
    REGEX_FUNCS,
    REGEX_INJECTION,
    SSRF,
    SSTI,
    TEMPLATE_SINKS,
    XSS,
)
from emgen.generators.insecure_code.taint import (
    Hit,
    TaintRules,
    call_name,
    dotted_name,
    find_tainted_flows,
)

try:  # Python 3.11+
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]


@dataclass(frozen=True)
class AstFinding:
    check: str
    cwe: str
    line: int
    message: str


@dataclass(frozen=True)
class Parsed:
    """A module with its nodes listed once, so each check does not walk the tree again."""

    tree: ast.Module
    nodes: list[ast.AST]
    call_names: frozenset[str]

    @classmethod
    def of(cls, tree: ast.Module) -> Parsed:
        nodes = list(ast.walk(tree))
        names = frozenset(call_name(n) for n in nodes if isinstance(n, ast.Call))
        return cls(tree, nodes, names)


@dataclass(frozen=True)
class AstCheck:
    """``run`` is skipped when none of ``triggers`` (call names) occurs in the module."""

    id: str
    cwe: str
    run: Callable[[Parsed], list[Hit]]
    triggers: frozenset[str] | None = None


SECRET_WORDS = re.compile(
    r"pass(?:word|wd|phrase)?|pwd|secret|token|api_?key|apikey|access_?key|private_?key|credential|"
    r"signature|(?:^|_)sig(?:$|_)|hmac|(?:^|_)mac(?:$|_)|digest|otp|card_?number|cvv|ssn|authorization",
    re.IGNORECASE,
)
LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log"})
LOGGER_NAMES = re.compile(r"^(?:log|logger|logging|_log|_logger|LOG|LOGGER|audit_log|audit)$")
MASKS = frozenset({"mask", "redact", "len", "bool", "hash_for_log", "fingerprint", "last4"})


def _names_in(node: ast.AST) -> list[str]:
    """Identifiers a value reads: names, attributes and constant dict keys / subscripts."""
    found = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Call) and call_name(current) in MASKS:
            continue
        if isinstance(current, ast.Name):
            found.append(current.id)
        elif isinstance(current, ast.Attribute):
            found.append(current.attr)
        elif isinstance(current, ast.Subscript) and isinstance(current.slice, ast.Constant):
            found.append(str(current.slice.value))
        elif isinstance(current, ast.Call) and call_name(current) == "get" and current.args:
            first = current.args[0]
            if isinstance(first, ast.Constant):
                found.append(str(first.value))
        stack.extend(ast.iter_child_nodes(current))
    return found


def _secretish(name: str) -> bool:
    return bool(SECRET_WORDS.search(name))


# --- taint-based checks -----------------------------------------------------------


def check_xss(parsed: Parsed) -> list[Hit]:
    """Untrusted data in an HTML string that a handler returns or wraps in a response."""
    if not any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and HTML_TAG.search(n.value) for n in parsed.nodes
    ):
        return []
    return find_tainted_flows(parsed.tree, XSS)


def _taint_check(rules: TaintRules) -> Callable[[Parsed], list[Hit]]:
    return lambda parsed: find_tainted_flows(parsed.tree, rules)


# --- pattern checks ---------------------------------------------------------------


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def check_jwt(parsed: Parsed) -> list[Hit]:
    """``jwt.decode`` that skips signature or expiry checks, allows ``none``, or trusts the token's ``alg``."""
    hits = []
    for node in parsed.nodes:
        if not isinstance(node, ast.Call):
            continue
        dotted = dotted_name(node.func)
        if dotted.endswith(("get_unverified_claims", "decode_unverified")):
            hits.append(Hit(node.lineno, "token claims read without verifying the signature"))
            continue
        if not dotted.endswith("jwt.decode") and dotted not in {"decode_token_claims"}:
            continue
        options = _keyword(node, "options")
        if isinstance(options, ast.Dict):
            for key, value in zip(options.keys, options.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and str(key.value).startswith("verify")
                    and isinstance(value, ast.Constant)
                    and value.value is False
                ):
                    hits.append(Hit(node.lineno, f"jwt.decode with {key.value} disabled"))
        verify = _keyword(node, "verify")
        if isinstance(verify, ast.Constant) and verify.value is False:
            hits.append(Hit(node.lineno, "jwt.decode with verify=False"))
        algorithms = _keyword(node, "algorithms")
        if algorithms is not None:
            for sub in ast.walk(algorithms):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and sub.value.lower() == "none":
                    hits.append(Hit(node.lineno, "jwt.decode accepts the 'none' algorithm"))
                if isinstance(sub, ast.Call) and call_name(sub) == "get_unverified_header":
                    hits.append(Hit(node.lineno, "jwt.decode takes its algorithm from the unverified token"))
        elif dotted.endswith("jwt.decode") and len(node.args) < 3:
            hits.append(Hit(node.lineno, "jwt.decode without a fixed list of algorithms"))
    return hits


def check_timing_compare(parsed: Parsed) -> list[Hit]:
    """A secret (token, signature, digest, API key …) compared with ``==`` or ``!=``."""
    hits = []
    for node in parsed.nodes:
        if not isinstance(node, ast.Compare) or len(node.ops) != 1:
            continue
        if not isinstance(node.ops[0], (ast.Eq, ast.NotEq)):
            continue
        sides = [node.left, node.comparators[0]]
        if any(isinstance(s, ast.Constant) for s in sides):
            continue
        if any(_compared_secret(s) for s in sides):
            hits.append(Hit(node.lineno, "secret compared with a non-constant-time operator"))
    return hits


def _compared_secret(node: ast.AST) -> bool:
    if isinstance(node, ast.Call) and call_name(node) in {"hexdigest", "digest"}:
        return True
    if isinstance(node, ast.Call) and call_name(node) == "get" and node.args:
        key = node.args[0]
        return isinstance(key, ast.Constant) and _secretish(str(key.value))
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return _secretish(node.id)
    if isinstance(node, ast.Attribute):
        return _secretish(node.attr)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return _secretish(str(node.slice.value))
    return False


def nested_quantifier(pattern: str) -> bool:
    """True if an unbounded repeat contains another unbounded repeat (catastrophic backtracking)."""
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return _star_height(parsed) >= 2


def _star_height(items: object) -> int:
    height = 0
    for op, arg in items:  # type: ignore[attr-defined]
        name = str(op)
        if name in {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}:
            low, high, sub = arg
            inner = _star_height(sub)
            unbounded = high == sre_parse.MAXREPEAT or high > 100
            height = max(height, inner + 1 if unbounded and name != "POSSESSIVE_REPEAT" else inner)
        elif name == "SUBPATTERN":
            height = max(height, _star_height(arg[-1]))
        elif name == "BRANCH":
            height = max(height, *(_star_height(branch) for branch in arg[1]))
        elif name in {"ASSERT", "ASSERT_NOT"}:
            height = max(height, _star_height(arg[1]))
    return height


def check_redos(parsed: Parsed) -> list[Hit]:
    """A regular expression with nested unbounded quantifiers, or one taken from the request."""
    hits = find_tainted_flows(parsed.tree, REGEX_INJECTION)
    constants: dict[str, str] = {}
    for node in parsed.nodes:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value.value
    for node in parsed.nodes:
        if not isinstance(node, ast.Call) or not node.args:
            continue
        if not dotted_name(node.func).startswith(("re.", "regex.")) or call_name(node) not in REGEX_FUNCS:
            continue
        first = node.args[0]
        pattern = None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            pattern = first.value
        elif isinstance(first, ast.Name):
            pattern = constants.get(first.id)
        if pattern is not None and nested_quantifier(pattern):
            hits.append(Hit(node.lineno, "regular expression with nested quantifiers"))
    return hits


def check_secret_logging(parsed: Parsed) -> list[Hit]:
    """A logging call whose arguments include a password, token, key or similar secret."""
    hits = []
    for node in parsed.nodes:
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr not in LOG_METHODS or not LOGGER_NAMES.match(dotted_name(node.func.value) or "-"):
            continue
        arguments = [*node.args[1:]] if node.args else []
        if node.args and isinstance(node.args[0], (ast.JoinedStr, ast.BinOp, ast.Call)):
            arguments.append(node.args[0])
        arguments += [k.value for k in node.keywords if k.arg == "extra"]
        leaked = [name for arg in arguments for name in _names_in(arg) if _secretish(name)]
        if leaked:
            hits.append(Hit(node.lineno, f"secret value {leaked[0]!r} written to the log"))
    return hits


RESPONDERS = frozenset(
    {"jsonify", "make_response", "Response", "JSONResponse", "HTMLResponse", "PlainTextResponse", "HTTPException",
     "abort", "JsonResponse", "HttpResponse"}
)  # fmt: skip


def check_error_exposure(parsed: Parsed) -> list[Hit]:
    """An exception's text or traceback sent back to the client from an ``except`` block."""
    hits = []
    for handler in parsed.nodes:
        if not isinstance(handler, ast.ExceptHandler):
            continue
        for node in (n for stmt in handler.body for n in ast.walk(stmt)):
            payload: list[ast.AST] = []
            if isinstance(node, ast.Return) and node.value is not None:
                payload = [node.value]
            elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and call_name(node.exc) in RESPONDERS:
                payload = [node.exc]
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and call_name(node.value) == "abort":
                payload = [node.value]
            for value in payload:
                if _exposes_exception(value, handler.name):
                    hits.append(Hit(node.lineno, "exception details returned to the client"))
                    break
    return hits


def _exposes_exception(node: ast.AST, exc_name: str | None) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and dotted_name(sub.func).startswith("traceback.format"):
            return True
        if exc_name and isinstance(sub, ast.Name) and sub.id == exc_name:
            return True
    return False


FAST_HASHES = frozenset(
    {"md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_256", "sha3_512", "blake2b", "blake2s", "new"}
)
PASSWORD_WORDS = re.compile(r"pass(?:word|wd|phrase)?|pwd|pin_code|^pin$", re.IGNORECASE)
MIN_PBKDF2_ITERATIONS = 100_000


def check_password_hash(parsed: Parsed) -> list[Hit]:
    """A password hashed with a fast digest, or PBKDF2 with too few iterations."""
    hits = []
    for node in parsed.nodes:
        if not isinstance(node, ast.Call):
            continue
        dotted = dotted_name(node.func)
        name = call_name(node)
        if dotted.startswith("hashlib.") and name in FAST_HASHES:
            if any(PASSWORD_WORDS.search(n) for arg in node.args for n in _names_in(arg)):
                hits.append(Hit(node.lineno, f"password hashed with fast digest hashlib.{name}"))
        elif name == "pbkdf2_hmac":
            iterations = node.args[3] if len(node.args) > 3 else _keyword(node, "iterations")
            value = _int_constant(iterations)
            if value is not None and value < MIN_PBKDF2_ITERATIONS:
                hits.append(Hit(node.lineno, f"PBKDF2 with only {value} iterations"))
    return hits


def _int_constant(node: ast.AST | None) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    return None


CREDENTIAL_NAMES = re.compile(
    r"^(?!.*(?:_url|_uri|_path|_file|_name|_type|_header|_env|_var|_field|_len|_length)$).*"
    r"(?:pass(?:word|wd|phrase)?|pwd|secret|token|api_?key|apikey|access_?key|private_?key|credential|auth_?key)",
    re.IGNORECASE,
)


def _literal_credential(value: ast.AST) -> bool:
    if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
        return False
    text = value.value
    return len(text) >= 6 and not text.isupper() and " " not in text and "/" not in text


def check_hardcoded_secret(parsed: Parsed) -> list[Hit]:
    """A credential-like name (API key, token, password …) bound to a string literal."""
    hits = []
    for node in parsed.nodes:
        pairs: list[tuple[str, ast.AST, int]] = []
        if isinstance(node, ast.Assign):
            pairs = [(dotted_name(t) or "", node.value, node.lineno) for t in node.targets]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            pairs = [(dotted_name(node.target) or "", node.value, node.lineno)]
        elif isinstance(node, ast.Call):
            pairs = [(k.arg or "", k.value, node.lineno) for k in node.keywords]
        elif isinstance(node, ast.Dict):
            pairs = [
                (str(k.value), v, node.lineno)
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            ]
        for name, value, line in pairs:
            last = name.rsplit(".", 1)[-1]
            if CREDENTIAL_NAMES.search(last) and _literal_credential(value):
                hits.append(Hit(line, f"credential {last!r} is a string literal"))
    return hits


def check_xxe(parsed: Parsed) -> list[Hit]:
    """An lxml parser that resolves external entities, loads DTDs or reaches the network."""
    hits = []
    for node in parsed.nodes:
        if not isinstance(node, ast.Call) or call_name(node) not in {"XMLParser", "XSLTAccessControl"}:
            continue
        for key, bad in (("resolve_entities", True), ("no_network", False), ("load_dtd", True), ("huge_tree", True)):
            value = _keyword(node, key)
            if isinstance(value, ast.Constant) and value.value is bad:
                hits.append(Hit(node.lineno, f"XML parser with {key}={bad}"))
                break
    return hits


def check_tls_unverified(parsed: Parsed) -> list[Hit]:
    """Certificate or host-name checks switched off on an SSL context or HTTP session."""
    hits = []
    for node in parsed.nodes:
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if not isinstance(target, ast.Attribute):
                continue
            value = node.value
            if target.attr in {"check_hostname", "verify"} and isinstance(value, ast.Constant) and value.value is False:
                hits.append(Hit(node.lineno, f"{target.attr} set to False"))
            elif target.attr == "verify_mode" and dotted_name(value).endswith("CERT_NONE"):
                hits.append(Hit(node.lineno, "verify_mode set to CERT_NONE"))
    return hits


CHECKS: dict[str, AstCheck] = {
    check.id: check
    for check in (
        AstCheck(
            "path-traversal",
            "CWE-22",
            _taint_check(PATH_TRAVERSAL),
            PATH_SINK_FUNCS | PATH_SINK_METHODS | {"save"},
        ),
        AstCheck("ssrf", "CWE-918", _taint_check(SSRF), HTTP_METHODS),
        AstCheck("open-redirect", "CWE-601", _taint_check(OPEN_REDIRECT), REDIRECTS),
        AstCheck("xss", "CWE-79", check_xss),
        AstCheck("ssti", "CWE-1336", _taint_check(SSTI), TEMPLATE_SINKS),
        AstCheck("redos", "CWE-1333", check_redos, REGEX_FUNCS),
        AstCheck("jwt-unverified", "CWE-347", check_jwt),
        AstCheck("timing-compare", "CWE-208", check_timing_compare),
        AstCheck("secret-logging", "CWE-532", check_secret_logging, LOG_METHODS),
        AstCheck("error-exposure", "CWE-209", check_error_exposure),
        AstCheck("password-hash", "CWE-916", check_password_hash, FAST_HASHES | {"pbkdf2_hmac"}),
        AstCheck("hardcoded-secret", "CWE-798", check_hardcoded_secret),
        AstCheck("xxe", "CWE-611", check_xxe, {"XMLParser", "XSLTAccessControl"}),
        AstCheck("tls-unverified", "CWE-295", check_tls_unverified),
    )
}


def run_checks(tree: ast.Module, ids: list[str] | None = None) -> list[AstFinding]:
    """Findings of the named checks (all when ``ids`` is None), sorted by line."""
    parsed = Parsed.of(tree)
    selected = CHECKS.values() if ids is None else [CHECKS[i] for i in ids]
    findings = [
        AstFinding(check.id, check.cwe, hit.line, hit.message)
        for check in selected
        if check.triggers is None or check.triggers & parsed.call_names
        for hit in check.run(parsed)
    ]
    return sorted(set(findings), key=lambda f: (f.line, f.check, f.message))
