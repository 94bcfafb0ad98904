"""Taint rules for the classes bandit misses: where untrusted data must not flow.

Each :class:`TaintRules` names the sink calls, the calls that clean data and the ``if`` tests
that validate it; :mod:`taint` follows data from request objects and handler parameters
into them. Used by :mod:`astchecks`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from emgen.generators.insecure_code.taint import TaintRules, call_name, dotted_name

PATH_SINK_FUNCS = frozenset({"open", "send_file", "FileResponse", "remove", "unlink", "rmtree", "copyfile"})
PATH_SINK_METHODS = frozenset({"open", "read_text", "read_bytes", "write_text", "write_bytes", "unlink", "mkdir"})


def _path_validator(test: ast.expr) -> bool:
    for node in ast.walk(test):
        if isinstance(node, ast.Call) and call_name(node) in {
            "is_relative_to",
            "startswith",
            "commonpath",
            "relative_to",
            "is_safe_path",
            "fullmatch",
        }:
            return True
    return False


def _path_sink(call: ast.Call, tainted: Callable[[ast.AST], bool]) -> str | None:
    name = call_name(call)
    func = call.func
    first = call.args[0] if call.args else None
    if isinstance(func, ast.Name) and name in PATH_SINK_FUNCS and tainted(first):
        return f"untrusted path reaches {name}()"
    if isinstance(func, ast.Attribute):
        dotted = dotted_name(func)
        if dotted in {"os.open", "io.open", "os.remove", "os.unlink", "shutil.rmtree", "shutil.copyfile"} and tainted(
            first
        ):
            return f"untrusted path reaches {dotted}()"
        if name in PATH_SINK_METHODS and tainted(func.value):
            return f"untrusted path reaches .{name}()"
        if name in {"save", "send_file"} and tainted(first):
            return f"untrusted path reaches .{name}()"
    return None


PATH_TRAVERSAL = TaintRules(
    sanitizers=frozenset({"secure_filename", "basename", "safe_join", "int", "uuid4", "len"}),
    validator=_path_validator,
    sink=_path_sink,
)

HTTP_METHODS = frozenset({"get", "post", "put", "delete", "head", "patch", "request", "urlopen", "stream"})
HTTP_CLIENTS = re.compile(r"^(?:requests|httpx|session|client|http|urllib\.request|self\.session|s)$")


def _url_validator(test: ast.expr) -> bool:
    for node in ast.walk(test):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            return True
        if isinstance(node, ast.Compare) and any(
            isinstance(side, ast.Attribute) and side.attr in {"hostname", "netloc", "host", "scheme"}
            for side in [node.left, *node.comparators]
        ):
            return True
        if isinstance(node, ast.Attribute) and node.attr in {"is_private", "is_global", "is_loopback"}:
            return True
        if isinstance(node, ast.Call) and call_name(node) in {
            "url_has_allowed_host_and_scheme",
            "is_safe_url",
            "is_allowed_url",
            "fullmatch",
        }:
            return True
    return False


def _ssrf_sink(call: ast.Call, tainted: Callable[[ast.AST], bool]) -> str | None:
    if not isinstance(call.func, ast.Attribute) or call.func.attr not in HTTP_METHODS:
        return None
    receiver = dotted_name(call.func.value)
    if not HTTP_CLIENTS.match(receiver):
        return None
    url = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "url"), None)
    if call.func.attr == "request" and len(call.args) > 1:
        url = call.args[1]
    if tainted(url):
        return f"untrusted URL reaches {receiver}.{call.func.attr}()"
    return None


SSRF = TaintRules(sanitizers=frozenset({"url_for"}), validator=_url_validator, sink=_ssrf_sink)


REDIRECTS = frozenset({"redirect", "RedirectResponse", "HttpResponseRedirect"})


def _redirect_sink(call: ast.Call, tainted: Callable[[ast.AST], bool]) -> str | None:
    name = call_name(call)
    if name in REDIRECTS:
        target = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "url"), None)
        if tainted(target):
            return f"untrusted URL reaches {name}()"
    return None


OPEN_REDIRECT = TaintRules(sanitizers=frozenset({"url_for"}), validator=_url_validator, sink=_redirect_sink)

HTML_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>")
HTML_ESCAPES = frozenset({"escape", "quote_html", "clean", "linkify", "conditional_escape", "format_html"})


def _html_literal(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and HTML_TAG.search(sub.value):
            return True
    return False


def _html_value(node: ast.AST, tainted: Callable[[ast.AST], bool]) -> str | None:
    if _html_literal(node) and tainted(node):
        return "untrusted data formatted into HTML without escaping"
    return None


def _xss_sink(call: ast.Call, tainted: Callable[[ast.AST], bool]) -> str | None:
    if call_name(call) in {"make_response", "Response", "HTMLResponse", "HttpResponse"} and call.args:
        return _html_value(call.args[0], tainted)
    return None


XSS = TaintRules(
    sanitizers=HTML_ESCAPES,
    validator=lambda test: False,
    sink=_xss_sink,
    return_sink=lambda value, tainted: _html_value(value.elts[0] if isinstance(value, ast.Tuple) else value, tainted),
)


TEMPLATE_SINKS = frozenset({"render_template_string", "Template", "from_string"})


def _template_sink(call: ast.Call, tainted: Callable[[ast.AST], bool]) -> str | None:
    name = call_name(call)
    if name in TEMPLATE_SINKS and dotted_name(call.func) != "string.Template" and call.args and tainted(call.args[0]):
        return f"untrusted data becomes template source in {name}()"
    return None


SSTI = TaintRules(sanitizers=frozenset(), validator=lambda test: False, sink=_template_sink)


REGEX_FUNCS = frozenset({"compile", "match", "search", "fullmatch", "findall", "finditer", "sub", "subn", "split"})


def _regex_injection_sink(call: ast.Call, tainted: Callable[[ast.AST], bool]) -> str | None:
    if not (dotted_name(call.func).startswith(("re.", "regex.")) and call_name(call) in REGEX_FUNCS and call.args):
        return None
    return "untrusted data used as a regular expression" if tainted(call.args[0]) else None


REGEX_INJECTION = TaintRules(sanitizers=frozenset({"escape"}), validator=lambda test: False, sink=_regex_injection_sink)
