"""A Hugging Face Hub on 127.0.0.1 that speaks what ``huggingface_hub`` uploads through.

Implemented: repo creation (``POST /api/repos/create``), repo and revision info
(``GET /api/datasets/{id}[/revision/{rev}]``), card metadata validation (``POST /api/validate-yaml``),
pre-upload (``POST /api/datasets/{id}/preupload/{rev}``: regular or LFS per file, with the remote
oid of files already there), the Git LFS batch API with basic transfers (batch, ``PUT`` of the
object, verify), the NDJSON commit (``POST /api/datasets/{id}/commit/{rev}``: files, LFS files,
deletions, ``parentCommit``), tree listing, file download (``HEAD``/``GET .../resolve/...``) and
repo settings (``PUT /api/datasets/{id}/settings``). The Xet storage protocol is not
implemented: tests run the client with ``HF_HUB_DISABLE_XET`` so it falls back to LFS, as it does
for a Hub without Xet.

Writes need the write token; a wrong token gets the Hub's 401. Every request is logged (method,
path, status, body; never the Authorization header's value) and faults can be scripted per route.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

WRITE_TOKEN = "hf_emgenTestWriteToken0123456789abcdef"
READ_TOKEN = "hf_emgenTestReadToken0123456789abcdef"
USER = "tester"
LFS_PATTERNS = ("*.parquet", "*.arrow", "*.bin")
REGULAR_LIMIT = 10 * 1024 * 1024
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.arrow filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Stored:
    data: bytes
    lfs: bool

    def oid(self) -> str:
        """What pre-upload reports and the client compares: sha256 for LFS files, the git blob sha1 otherwise."""
        return hashlib.sha256(self.data).hexdigest() if self.lfs else git_blob_sha1(self.data)


@dataclass
class Commit:
    oid: str
    message: str
    files: dict[str, Stored]


@dataclass
class Repo:
    repo_id: str
    private: bool
    gated: str | bool = False
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> Commit:
        return self.commits[-1]


@dataclass
class Logged:
    method: str
    path: str
    status: int
    body: bytes
    authorized: bool


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra


@dataclass
class FakeHub:
    """The Hub's state; tests read ``repos`` and ``log`` and script ``faults`` by route name."""

    port: int = 0
    repos: dict[str, Repo] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)
    log: list[Logged] = field(default_factory=list)
    faults: dict[str, deque[int]] = field(default_factory=dict)
    echo_auth_in_errors: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, route: str, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``route`` (e.g. ``commit``, ``create``) with ``status``."""
        self.faults.setdefault(route, deque()).extend([status] * times)

    def files(self, repo_id: str) -> dict[str, bytes]:
        return {path: stored.data for path, stored in self.repos[repo_id].head.files.items()}

    def requests(self, route_path: str, method: str | None = None) -> list[Logged]:
        return [e for e in self.log if route_path in e.path and (method is None or e.method == method)]

    # -- routes -----------------------------------------------------------------------------

    def handle(self, method: str, url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        path, query = unquote(parts.path), parse_qs(parts.query)
        token = headers.get("authorization", "").removeprefix("Bearer ").strip() or None
        for route, pattern, methods, handler in self.routes():
            match = re.fullmatch(pattern, path)
            if match is None or method not in methods:
                continue
            queued = self.faults.get(route)
            if queued:
                status = queued.popleft()
                message = f"injected {status} on {route}"
                if self.echo_auth_in_errors:
                    message += f" (Authorization: Bearer {token})"
                return self._error(HubError(status, message))
            try:
                with self._lock:
                    return handler(match, token=token, body=body, query=query, method=method)
            except HubError as exc:
                return self._error(exc)
        return self._error(HubError(404, f"no route for {method} {path}"))

    def routes(self) -> list[tuple[str, str, tuple[str, ...], Any]]:
        repo = r"(?P<repo>[^/]+/[^/]+)"
        return [
            ("create", r"/api/repos/create", ("POST",), self.create),
            ("validate", r"/api/validate-yaml", ("POST",), self.validate_yaml),
            ("whoami", r"/api/whoami-v2", ("GET",), self.whoami),
            ("info", rf"/api/datasets/{repo}(?:/revision/(?P<rev>[^/]+))?", ("GET",), self.info),
            ("preupload", rf"/api/datasets/{repo}/preupload/(?P<rev>[^/]+)", ("POST",), self.preupload),
            ("commit", rf"/api/datasets/{repo}/commit/(?P<rev>[^/]+)", ("POST",), self.commit),
            ("tree", rf"/api/datasets/{repo}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", ("GET",), self.tree),
            ("settings", rf"/api/datasets/{repo}/settings", ("PUT",), self.settings),
            ("lfs-batch", rf"/datasets/{repo}\.git/info/lfs/objects/batch", ("POST",), self.lfs_batch),
            ("lfs-upload", r"/lfs-upload/(?P<oid>[0-9a-f]{64})", ("PUT",), self.lfs_upload),
            ("lfs-verify", rf"/lfs-verify/{repo}", ("POST",), self.lfs_verify),
            ("resolve", rf"/datasets/{repo}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", ("GET", "HEAD"), self.resolve),
        ]

    def _error(self, exc: HubError) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json", "X-Error-Message": exc.message}
        if exc.code:
            headers["X-Error-Code"] = exc.code
        return exc.status, headers, json.dumps({"error": exc.message, **exc.extra}).encode()

    @staticmethod
    def _json(
        data: Any, status: int = 200, content_type: str = "application/json"
    ) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": content_type}, json.dumps(data).encode()

    def _writer(self, token: str | None) -> None:
        if token != WRITE_TOKEN:
            if token == READ_TOKEN:
                raise HubError(403, "You don't have the rights to write to this repository")
            raise HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, match: re.Match[str], token: str | None) -> Repo:
        repo = self.repos.get(match.group("repo"))
        if repo is None or (repo.private and token not in (WRITE_TOKEN, READ_TOKEN)):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _revision(self, repo: Repo, rev: str | None) -> Commit:
        if rev in (None, "main"):
            return repo.head
        for commit in repo.commits:
            if commit.oid == rev:
                return commit
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def create(self, match, token, body, **_) -> tuple[int, dict[str, str], bytes]:
        self._writer(token)
        payload = json.loads(body)
        if payload.get("type") != "dataset":
            raise HubError(400, "only dataset repos here")
        namespace = payload.get("organization") or USER
        if namespace != USER:
            raise HubError(403, f"You don't have the rights to create a dataset under the namespace {namespace}")
        repo_id = f"{namespace}/{payload['name']}"
        if repo_id in self.repos:
            raise HubError(409, "You already created this dataset repo", url=f"{self.url}/datasets/{repo_id}")
        private = payload.get("visibility", "public") == "private" or payload.get("private") is True
        repo = Repo(repo_id, private)
        files = {".gitattributes": Stored(GITATTRIBUTES, False)}
        repo.commits.append(Commit(self._commit_oid(repo_id, "initial", files), "initial commit", files))
        self.repos[repo_id] = repo
        return self._json({"url": f"{self.url}/datasets/{repo_id}", "name": repo_id})

    def whoami(self, match, token, **_) -> tuple[int, dict[str, str], bytes]:
        if token not in (WRITE_TOKEN, READ_TOKEN):
            raise HubError(401, "Invalid credentials in Authorization header")
        return self._json({"type": "user", "name": USER, "orgs": []})

    def validate_yaml(self, match, token, body, **_) -> tuple[int, dict[str, str], bytes]:
        content = json.loads(body)["content"]
        errors = card_metadata_errors(content)
        if errors:
            return self._json({"errors": [{"message": e} for e in errors]}, status=400)
        return self._json({"errors": [], "warnings": []})

    def info(self, match, token, **_) -> tuple[int, dict[str, str], bytes]:
        repo = self._repo(match, token)
        commit = self._revision(repo, match.group("rev"))
        data = {
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
        }
        return self._json(data)

    def preupload(self, match, token, body, **_) -> tuple[int, dict[str, str], bytes]:
        self._writer(token)
        repo = self._repo(match, token)
        head = self._revision(repo, match.group("rev"))
        answers = []
        for file in json.loads(body)["files"]:
            lfs = file["size"] > REGULAR_LIMIT or any(fnmatch.fnmatch(file["path"], p) for p in LFS_PATTERNS)
            existing = head.files.get(file["path"])
            answers.append(
                {
                    "path": file["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": existing.oid() if existing is not None else None,
                }
            )
        return self._json({"files": answers, "commitOid": head.oid})

    def lfs_batch(self, match, token, body, **_) -> tuple[int, dict[str, str], bytes]:
        self._writer(token)
        self._repo(match, token)
        payload = json.loads(body)
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", ["basic"]):
            raise HubError(422, "only basic uploads here")
        objects = []
        for obj in payload["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.lfs:
                entry["actions"] = {
                    "upload": {"href": f"{self.url}/lfs-upload/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{self.url}/lfs-verify/{match.group('repo')}", "header": {}},
                }
            objects.append(entry)
        return self._json({"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def lfs_upload(self, match, body, **_) -> tuple[int, dict[str, str], bytes]:
        if hashlib.sha256(body).hexdigest() != match.group("oid"):
            raise HubError(400, "the uploaded bytes do not match the oid")
        self.lfs[match.group("oid")] = body
        return 200, {}, b""

    def lfs_verify(self, match, token, body, **_) -> tuple[int, dict[str, str], bytes]:
        self._writer(token)
        payload = json.loads(body)
        stored = self.lfs.get(payload["oid"])
        if stored is None or len(stored) != payload["size"]:
            raise HubError(422, "object not uploaded")
        return self._json({"success": True})

    def commit(self, match, token, body, query, **_) -> tuple[int, dict[str, str], bytes]:
        self._writer(token)
        repo = self._repo(match, token)
        if match.group("rev") != "main":
            raise HubError(400, "only main here")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = lines[0]
        if header.get("key") != "header":
            raise HubError(400, "the first line must be the header")
        parent = header["value"].get("parentCommit")
        if parent is not None and parent != repo.head.oid:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(repo.head.files)
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file":
                files[value["path"]] = Stored(base64.b64decode(value["content"]), False)
            elif line["key"] == "lfsFile":
                if value["oid"] not in self.lfs:
                    raise HubError(422, f"LFS object {value['oid']} was never uploaded")
                files[value["path"]] = Stored(self.lfs[value["oid"]], True)
            elif line["key"] == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
            elif line["key"] == "deletedFolder":
                files = {p: s for p, s in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            else:
                raise HubError(400, f"unknown operation {line['key']}")
        oid = self._commit_oid(repo.repo_id, repo.head.oid, files)
        repo.commits.append(Commit(oid, header["value"]["summary"], files))
        return self._json({"commitUrl": f"{self.url}/datasets/{repo.repo_id}/commit/{oid}", "commitOid": oid})

    def tree(self, match, token, **_) -> tuple[int, dict[str, str], bytes]:
        repo = self._repo(match, token)
        commit = self._revision(repo, match.group("rev"))
        prefix = (match.group("path") or "").strip("/")
        entries = []
        for path in sorted(commit.files):
            if prefix and not path.startswith(prefix + "/"):
                continue
            stored = commit.files[path]
            entry: dict[str, Any] = {"type": "file", "path": path, "size": len(stored.data)}
            entry["oid"] = git_blob_sha1(stored.data)
            if stored.lfs:
                entry["lfs"] = {
                    "oid": hashlib.sha256(stored.data).hexdigest(),
                    "size": len(stored.data),
                    "pointerSize": 134,
                }
            entries.append(entry)
        return self._json(entries)

    def resolve(self, match, token, method, **_) -> tuple[int, dict[str, str], bytes]:
        repo = self._repo(match, token)
        commit = self._revision(repo, match.group("rev"))
        stored = commit.files.get(match.group("path"))
        if stored is None:
            raise HubError(404, "Entry not found", "EntryNotFound")
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{stored.oid()}"',
            "Content-Length": str(len(stored.data)),
            "Content-Type": "application/octet-stream",
        }
        return 200, headers, b"" if method == "HEAD" else stored.data

    def settings(self, match, token, body, **_) -> tuple[int, dict[str, str], bytes]:
        self._writer(token)
        repo = self._repo(match, token)
        payload = json.loads(body)
        if "gated" in payload:
            repo.gated = payload["gated"]
        if "private" in payload:
            repo.private = bool(payload["private"])
        if "visibility" in payload:
            repo.private = payload["visibility"] == "private"
        return self._json({})

    @staticmethod
    def _commit_oid(repo_id: str, parent: str, files: dict[str, Stored]) -> str:
        digest = hashlib.sha1(f"{repo_id}\0{parent}".encode())
        for path in sorted(files):
            digest.update(f"\0{path}\0{files[path].oid()}".encode())
        return digest.hexdigest()


def card_metadata_errors(content: str) -> list[str]:
    """What the Hub would refuse in a dataset card's YAML header (a subset: shape and configs)."""
    match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
    if match is None:
        return []
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        return [f"YAML: {exc}"]
    if not isinstance(meta, dict):
        return ["metadata must be a mapping"]
    errors = []
    for config in meta.get("configs", []):
        if not isinstance(config, dict) or not isinstance(config.get("config_name"), str):
            errors.append("every entry of configs needs a config_name")
        elif not config.get("data_files"):
            errors.append(f"config {config['config_name']} has no data_files")
    return errors


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeHub

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        body = self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out_headers, data = self.hub.handle(self.command, self.path, headers, body)
        self.hub.log.append(Logged(self.command, urlsplit(self.path).path, status, body, "authorization" in headers))
        self.send_response(status)
        for key, value in out_headers.items():
            self.send_header(key, value)
        if "Content-Length" not in out_headers:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _serve


@contextmanager
def serving(hub: FakeHub | None = None) -> Iterator[FakeHub]:
    """Run a :class:`FakeHub` on 127.0.0.1 in a thread for the duration of the block."""
    hub = hub or FakeHub()
    handler = type("Handler", (_Handler,), {"hub": hub})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    hub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
