"""The in-process bandit adapter: every bandit test id the scenarios rely on, both ways."""

import pytest

from emgen.generators.insecure_code.bandit_adapter import UnscannableCode, scan

# test id -> (insecure snippet that must be flagged with it, secure snippet that must be clean)
CASES = {
    "B608": (
        "def f(conn, name):\n    return conn.execute(f\"SELECT id FROM users WHERE name = '{name}'\")\n",
        "def f(conn, name):\n    return conn.execute('SELECT id FROM users WHERE name = ?', (name,))\n",
    ),
    "B602": (
        "import subprocess\ndef f(host):\n    subprocess.run(f'ping -c 1 {host}', shell=True)\n",
        "import subprocess\ndef f(host):\n    subprocess.run(['ping', '-c', '1', '--', host], check=True)\n",
    ),
    "B605": (
        "import os\ndef f(path):\n    os.system(f'du -sb {path}')\n",
        "import shutil\ndef f(path):\n    return shutil.disk_usage(path)\n",
    ),
    "B202": (
        "import tarfile\ndef f(p, d):\n    with tarfile.open(p) as t:\n        t.extractall(d)\n",
        "import tarfile\ndef f(p, d):\n    with tarfile.open(p) as t:\n        t.extractall(d, filter='data')\n",
    ),
    "B301": (
        "import pickle\ndef f(b):\n    return pickle.loads(b)\n",
        "import json\ndef f(b):\n    return json.loads(b)\n",
    ),
    "B506": (
        "import yaml\ndef f(s):\n    return yaml.load(s, Loader=yaml.Loader)\n",
        "import yaml\ndef f(s):\n    return yaml.safe_load(s)\n",
    ),
    "B314": (
        "import xml.etree.ElementTree as ET\ndef f(d):\n    return ET.fromstring(d)\n",
        "import defusedxml.ElementTree as ET\ndef f(d):\n    return ET.fromstring(d)\n",
    ),
    "B318": (
        "from xml.dom.minidom import parseString\ndef f(d):\n    return parseString(d)\n",
        "from defusedxml.minidom import parseString\ndef f(d):\n    return parseString(d)\n",
    ),
    "B317": (
        "import xml.sax\nparser = xml.sax.make_parser()\n",
        "import defusedxml.sax\nparser = defusedxml.sax.make_parser()\n",
    ),
    "B701": (
        "from jinja2 import Environment, FileSystemLoader\nenv = Environment(loader=FileSystemLoader('t'))\n",
        "from jinja2 import Environment, FileSystemLoader, select_autoescape\n"
        "env = Environment(loader=FileSystemLoader('t'), autoescape=select_autoescape())\n",
    ),
    "B324": (
        "import hashlib\ndef f(b):\n    return hashlib.sha1(b).hexdigest()\n",
        "import hashlib\ndef f(b):\n    return hashlib.sha256(b).hexdigest()\n",
    ),
    "B305": (
        "from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes\n"
        "def f(k):\n    return Cipher(algorithms.AES(k), modes.ECB()).encryptor()\n",
        "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\ndef f(k):\n    return AESGCM(k)\n",
    ),
    "B304": (
        "from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes\n"
        "def f(k, iv):\n    return Cipher(algorithms.TripleDES(k), modes.CBC(iv))\n",
        "from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes\n"
        "def f(k, iv):\n    return Cipher(algorithms.AES(k), modes.GCM(iv))\n",
    ),
    "B505": (
        "from cryptography.hazmat.primitives.asymmetric import rsa\n"
        "k = rsa.generate_private_key(public_exponent=65537, key_size=1024)\n",
        "from cryptography.hazmat.primitives.asymmetric import rsa\n"
        "k = rsa.generate_private_key(public_exponent=65537, key_size=3072)\n",
    ),
    "B105": ("DB_PASSWORD = 'Xk93!mQ7vR2p'\n", "import os\nDB_PASSWORD = os.environ['DB_PASSWORD']\n"),
    "B106": (
        "import psycopg2\nc = psycopg2.connect(user='app', password='postgres123')\n",
        "import os\nimport psycopg2\nc = psycopg2.connect(user='app', password=os.environ['PW'])\n",
    ),
    "B306": (
        "import tempfile\npath = tempfile.mktemp(suffix='.csv')\n",
        "import tempfile\nhandle = tempfile.NamedTemporaryFile(suffix='.csv', delete=False)\n",
    ),
    "B108": ("path = '/tmp/export.csv'\n", "import tempfile\npath = tempfile.mkstemp(suffix='.csv')[1]\n"),
    "B501": (
        "import requests\nr = requests.post('https://x.example', timeout=10, verify=False)\n",
        "import requests\nr = requests.post('https://x.example', timeout=10)\n",
    ),
    "B507": (
        "import paramiko\nc = paramiko.SSHClient()\nc.set_missing_host_key_policy(paramiko.WarningPolicy())\n",
        "import paramiko\nc = paramiko.SSHClient()\nc.set_missing_host_key_policy(paramiko.RejectPolicy())\n",
    ),
    "B323": (
        "import ssl\nctx = ssl._create_unverified_context()\n",
        "import ssl\nctx = ssl.create_default_context()\n",
    ),
    "B103": ("import os\nos.chmod('creds.json', 0o664)\n", "import os\nos.chmod('creds.json', 0o600)\n"),
    "B307": (
        "def f(expr):\n    return eval(expr, {'__builtins__': {}})\n",
        "import ast\ndef f(expr):\n    return ast.literal_eval(expr)\n",
    ),
    "B102": (
        "def f(raw):\n    scope = {}\n    exec('x = ' + raw, scope)\n",
        "import json\ndef f(raw):\n    return json.loads(raw)\n",
    ),
    "B311": (
        "import random\ntoken = ''.join(random.choices('abcdef0123456789', k=32))\n",
        "import secrets\ntoken = secrets.token_hex(16)\n",
    ),
}


@pytest.mark.parametrize("test_id", sorted(CASES))
def test_insecure_is_flagged_and_secure_is_clean(test_id):
    insecure, secure = CASES[test_id]
    assert test_id in {f.test_id for f in scan(insecure)}
    clean = scan(secure)
    assert test_id not in {f.test_id for f in clean}
    assert not [f for f in clean if f.serious], clean


def test_findings_carry_line_severity_and_cwe():
    [finding] = scan("x = 1\nimport os\nos.system(input())\n")[-1:]
    assert (finding.test_id, finding.line, finding.severity, finding.cwe) == ("B605", 3, "HIGH", 78)
    assert finding.serious


def test_nosec_comments_are_ignored():
    assert "B605" in {f.test_id for f in scan("import os\nos.system(input())  # nosec\n")}


def test_unparseable_code_is_rejected_not_skipped():
    with pytest.raises(UnscannableCode, match="syntax error"):
        scan("def broken(:\n")


def test_scanner_is_reusable_without_leaking_results():
    assert scan("import pickle\npickle.loads(b'')\n")
    assert scan("x = 1\n") == []
