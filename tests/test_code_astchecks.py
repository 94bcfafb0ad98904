"""The AST checks for weaknesses bandit misses: each fires on the bad form only."""

import ast

import pytest

from emgen.generators.insecure_code.astchecks import CHECKS, nested_quantifier, run_checks


def fired(code, check):
    return [f.line for f in run_checks(ast.parse(code), [check])]


FLASK = "from flask import Flask, request, send_file, redirect, render_template_string, abort\napp = Flask(__name__)\n"

CASES = {
    "path-traversal": (
        FLASK + "@app.route('/f/<name>')\ndef f(name):\n    return send_file('/srv/files/' + name)\n",
        FLASK + "from pathlib import Path\nBASE = Path('/srv/files')\n@app.route('/f/<name>')\ndef f(name):\n"
        "    path = (BASE / name).resolve()\n    if not path.is_relative_to(BASE):\n        abort(404)\n"
        "    return send_file(path)\n",
    ),
    "ssrf": (
        "import requests\n" + FLASK + "@app.get('/p')\ndef p():\n    url = request.args['url']\n"
        "    return requests.get(url, timeout=5).text\n",
        "import requests\nfrom urllib.parse import urlparse\n" + FLASK + "ALLOWED = {'a.example'}\n@app.get('/p')\n"
        "def p():\n    url = request.args['url']\n    if urlparse(url).hostname not in ALLOWED:\n        abort(400)\n"
        "    return requests.get(url, timeout=5).text\n",
    ),
    "open-redirect": (
        FLASK + "@app.get('/go')\ndef go():\n    return redirect(request.args.get('next', '/'))\n",
        FLASK + "@app.get('/go')\ndef go():\n    return redirect(url_for('index'))\n",
    ),
    "xss": (
        FLASK + "@app.get('/s')\ndef s():\n    q = request.args.get('q', '')\n    return f'<h1>{q}</h1>'\n",
        FLASK + "from markupsafe import escape\n@app.get('/s')\ndef s():\n    q = request.args.get('q', '')\n"
        "    return f'<h1>{escape(q)}</h1>'\n",
    ),
    "ssti": (
        FLASK
        + "@app.get('/h')\ndef h():\n    name = request.args['n']\n    return render_template_string(f'<p>{name}</p>')\n",
        FLASK + "@app.get('/h')\ndef h():\n    name = request.args['n']\n"
        "    return render_template_string('<p>{{ n }}</p>', n=name)\n",
    ),
    "redos": (
        "import re\ndef ok(v):\n    return re.match(r'^(\\w+\\s?)*$', v)\n",
        "import re\ndef ok(v):\n    return re.fullmatch(r'\\w+', v)\n",
    ),
    "jwt-unverified": (
        "import jwt\ndef claims(t):\n    return jwt.decode(t, options={'verify_signature': False})\n",
        "import jwt\ndef claims(t, key):\n    return jwt.decode(t, key, algorithms=['HS256'])\n",
    ),
    "timing-compare": (
        "def check(signature, expected_signature):\n    return signature == expected_signature\n",
        "import hmac\ndef check(signature, expected_signature):\n    return hmac.compare_digest(signature, expected_signature)\n",
    ),
    "secret-logging": (
        "import logging\nlogger = logging.getLogger()\ndef f(user, password):\n"
        "    logger.info('login %s %s', user, password)\n",
        "import logging\nlogger = logging.getLogger()\ndef f(user, password):\n    logger.info('login %s', user)\n",
    ),
    "error-exposure": (
        "from flask import jsonify\ndef f():\n    try:\n        g()\n    except Exception as exc:\n"
        "        return jsonify(error=str(exc)), 500\n",
        "from flask import jsonify\ndef f():\n    try:\n        g()\n    except Exception:\n"
        "        return jsonify(error='failed'), 500\n",
    ),
    "password-hash": (
        "import hashlib\ndef h(password, salt):\n    return hashlib.sha256(salt + password.encode()).digest()\n",
        "import hashlib\ndef h(password, salt):\n    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)\n",
    ),
    "hardcoded-secret": (
        "STRIPE_API_KEY = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'\n",
        "import os\nSTRIPE_API_KEY = os.environ['STRIPE_API_KEY']\nTOKEN_URL = 'https://auth.example/token'\n",
    ),
    "xxe": (
        "from lxml import etree\nparser = etree.XMLParser(resolve_entities=True)\n",
        "from lxml import etree\nparser = etree.XMLParser(resolve_entities=False, no_network=True)\n",
    ),
    "tls-unverified": (
        "import ssl\nctx = ssl.create_default_context()\nctx.check_hostname = False\nctx.verify_mode = ssl.CERT_NONE\n",
        "import ssl\nctx = ssl.create_default_context()\n",
    ),
}


def test_every_check_has_a_case():
    assert set(CASES) == set(CHECKS)


@pytest.mark.parametrize("check", sorted(CASES))
def test_check_fires_on_the_bad_form_only(check):
    bad, good = CASES[check]
    assert fired(bad, check), bad
    assert not run_checks(ast.parse(good)), good


def test_zip_member_names_are_untrusted():
    code = (
        "import zipfile\ndef x(p, dest):\n    with zipfile.ZipFile(p) as z:\n        for m in z.infolist():\n"
        "            with z.open(m) as src, open(dest + '/' + m.filename, 'wb') as out:\n                out.write(src.read())\n"
    )
    assert fired(code, "path-traversal") == [5]


def test_typed_route_parameters_are_not_untrusted():
    code = FLASK + "@app.route('/r/<int:rid>')\ndef r(rid):\n    return send_file(f'/srv/r/{rid}.pdf')\n"
    assert not fired(code, "path-traversal")
    code = FLASK + "@app.route('/r/<rid>')\ndef r(rid):\n    return send_file(f'/srv/r/{rid}.pdf')\n"
    assert fired(code, "path-traversal")


def test_plain_function_parameters_are_not_untrusted():
    assert not fired("def save(path, data):\n    open(path, 'w').write(data)\n", "path-traversal")


def test_a_check_that_does_not_exit_does_not_sanitize():
    code = (
        FLASK + "@app.route('/f/<name>')\ndef f(name):\n    path = '/srv/' + name\n"
        "    if not path.startswith('/srv/'):\n        print('odd')\n    return send_file(path)\n"
    )
    assert fired(code, "path-traversal")


@pytest.mark.parametrize(
    ("pattern", "nested"),
    [(r"^(a+)+$", True), (r"(\w+\s?)*", True), (r"^([a-z0-9]+\.)+[a-z]{2,}$", True), (r"\w+", False),
     (r"^[a-z]{2,8}-\d{1,4}$", False), (r"(ab){1,3}c*", False)],
)  # fmt: skip
def test_nested_quantifiers(pattern, nested):
    assert nested_quantifier(pattern) is nested
