"""Publishing dataset folders to one Hugging Face Hub dataset repo, one configuration per folder.

A push stages the repo's files locally (parquet per split, the manifests, the card), compares
them with what the repo holds, and commits only what changed, in one commit; unchanged data
makes no commit at all. Configurations already in the repo that this push does not name are
kept, and the card lists them too. The token comes from ``HF_TOKEN`` or the user's saved login
and is never written, logged or shown: every message that leaves this module is scrubbed of it.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils.sha import git_hash

from emgen import __version__
from emgen.dataset_folder import DatasetFolder, open_folder
from emgen.errors import ConflictError, EmgenError
from emgen.export.layout import StagedConfig, config_names, remote_config, stage_config, write_card
from emgen.hub_card import HUB_URL, CardConfig
from emgen.output import CARD, MANIFEST, prepare_output_dir
from emgen.recipe import Recipe
from emgen.resources import schema_errors

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENDPOINT = re.compile(r"^https?://[^/@\s]+(?:/\S*)?$")
_REMOTE_MANIFEST = re.compile(rf"^([^/]+)/{re.escape(MANIFEST)}$")
GATING = ("auto", "manual")


class HubError(EmgenError):
    """The Hub could not be reached, refused the token, or failed; the message says what to do."""


@dataclass(frozen=True)
class PushRequest:
    folders: tuple[Path, ...]
    repo: str
    public: bool = False
    gated: str | None = None
    endpoint: str | None = None
    message: str | None = None
    dry_run_out: Path | None = None
    """Write the repo's files here instead of uploading them."""
    force: bool = False


@dataclass
class ConfigStatus:
    name: str
    state: str
    """``added``, ``updated`` or ``unchanged`` for pushed folders; ``kept`` for ones already in the repo."""
    rows: dict[str, int]


@dataclass
class PushResult:
    repo: str
    url: str
    configs: list[ConfigStatus]
    commit: str | None = None
    """The new commit, or None when nothing changed (or a dry run)."""
    private: bool | None = None
    gated: str | bool | None = None
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    folder: Path | None = None


def resolve_endpoint(endpoint: str | None) -> str:
    url = (endpoint or os.environ.get("HF_ENDPOINT") or HUB_URL).rstrip("/")
    if not _ENDPOINT.match(url):
        raise HubError("the Hub endpoint must be an http:// or https:// URL without credentials in it")
    return url


def resolve_token() -> str:
    token = get_token()
    if not token:
        raise HubError("no Hugging Face token: set HF_TOKEN, or log in once with `hf auth login`")
    return token


def check_request(request: PushRequest) -> None:
    if not REPO_ID.match(request.repo):
        raise HubError(f"--repo must be OWNER/NAME (letters, digits, '.', '_', '-'), not {request.repo!r}")
    if request.gated is not None and request.gated not in GATING:
        raise HubError(f"--gated must be one of {', '.join(GATING)}, not {request.gated!r}")
    if not request.folders:
        raise HubError("give at least one dataset folder to push")
    if request.dry_run_out is None and request.force:
        raise ConflictError("--force only applies to --dry-run --out DIR")


def push(request: PushRequest) -> PushResult:
    """Publish ``request.folders`` to ``request.repo`` (or lay the repo out in a folder for a dry run)."""
    check_request(request)
    folders = [open_folder(path) for path in request.folders]
    config_names(folders)
    if request.dry_run_out is not None:
        return _dry_run(request, folders, request.dry_run_out)
    endpoint = resolve_endpoint(request.endpoint)
    token = resolve_token()
    session = _Session(endpoint, token, request.repo)
    with session.errors(), tempfile.TemporaryDirectory(prefix="emgen-push-") as staging:
        return _push(session, request, folders, Path(staging))


def _dry_run(request: PushRequest, folders: list[DatasetFolder], out: Path) -> PushResult:
    if any(out.resolve() == f.path.resolve() for f in folders):
        raise HubError(f"{out} is a folder being pushed; write the dry run somewhere else")
    prepare_output_dir(out, request.force)
    for entry in out.iterdir():
        if entry.is_dir() and (entry / MANIFEST).exists():
            for file in entry.iterdir():
                file.unlink()
            entry.rmdir()
    staged = sorted((stage_config(f, out, f"{f.config_name}/") for f in folders), key=lambda s: s.name)
    endpoint = resolve_endpoint(request.endpoint)
    write_card(out, [s.card for s in staged], request.repo, endpoint)
    configs = [ConfigStatus(s.name, "added", s.card.rows) for s in staged]
    files = sorted([CARD, *(path for s in staged for path in s.files)])
    url = f"{endpoint}/datasets/{request.repo}"
    return PushResult(request.repo, url, configs, private=not request.public, uploaded=files, folder=out)


class _Session:
    """The Hub client for one push, and the translation of its failures into one-line errors."""

    def __init__(self, endpoint: str, token: str, repo: str) -> None:
        self.endpoint = endpoint
        self.token = token
        self.repo = repo
        self.step = "connecting"
        self.api = HfApi(endpoint=endpoint, token=token, library_name="emgen", library_version=__version__)

    def scrub(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text

    @contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except HfHubHTTPError as exc:
            raise HubError(self.scrub(self._http_message(exc))) from None
        except OfflineModeIsEnabled:
            raise HubError(
                "HF_HUB_OFFLINE is set, so nothing can be pushed: unset it, or use --dry-run --out DIR"
            ) from None
        except httpx2.TransportError as exc:
            reason = type(exc).__name__
            raise HubError(
                self.scrub(
                    f"cannot reach the Hub at {self.endpoint} while {self.step} ({reason}): "
                    "check the network, or the address given by --endpoint or HF_ENDPOINT"
                )
            ) from None
        except ValueError as exc:
            if "metadata in README.md" not in str(exc):
                raise
            detail = " ".join(str(exc).split())
            raise HubError(self.scrub(f"the Hub rejected the card's metadata: {detail}")) from None

    def _http_message(self, exc: HfHubHTTPError) -> str:
        status = exc.response.status_code if exc.response is not None else None
        owner = self.repo.split("/")[0]
        if status == 401:
            return (
                f"the Hub at {self.endpoint} refused the token (401 Unauthorized) while {self.step}: "
                "set HF_TOKEN to a valid token with write access, or run `hf auth login`"
            )
        if status == 403:
            return (
                f"the token may not write to {self.repo} (403 Forbidden) while {self.step}: "
                f"use a token with write access to the {owner!r} namespace"
            )
        if status == 404:
            return (
                f"{self.repo} was not found at {self.endpoint} while {self.step} (404): "
                "check --repo, and that the token has access to it"
            )
        if status in (409, 412):
            return f"{self.repo} changed while {self.step} (HTTP {status}); run the push again"
        if status is not None and status >= 500:
            return (
                f"the Hub at {self.endpoint} failed while {self.step} (HTTP {status}); "
                f"{self.repo} is unchanged: try again later"
            )
        detail = getattr(exc, "server_message", None) or ""
        detail = detail.strip().splitlines()[0] if detail.strip() else "no reason given"
        return f"the Hub refused {self.step} for {self.repo} (HTTP {status}: {detail})"


def _push(session: _Session, request: PushRequest, folders: list[DatasetFolder], staging: Path) -> PushResult:
    api, repo = session.api, request.repo
    session.step = "creating the repo"
    url = str(api.create_repo(repo, repo_type="dataset", private=not request.public, exist_ok=True))
    session.step = "reading the repo"
    info = api.dataset_info(repo, revision="main")
    if info.private is False and not request.public:
        raise HubError(f"{repo} is public; pass --public to publish to it (emgen keeps data private unless told)")
    remote = {
        entry.path: entry
        for entry in api.list_repo_tree(repo, recursive=True, repo_type="dataset", revision=info.sha)
        if isinstance(entry, RepoFile)
    }
    pushed = {f.config_name for f in folders}
    session.step = "reading the configurations already in the repo"
    kept = _remote_configs(api, repo, info.sha, remote, pushed, staging / ".remote")
    session.step = "preparing the files"
    root = staging / "repo"
    staged = [stage_config(f, root, f"{f.config_name}/") for f in folders]
    cards = sorted([*(s.card for s in staged), *kept], key=lambda c: c.name)
    card = write_card(root, cards, repo, session.endpoint)
    local = {CARD: card, **{path: file for s in staged for path, file in s.files.items()}}
    _refuse_secrets(local, session.token)
    changed = sorted(path for path, file in local.items() if not _same(file, remote.get(path)))
    deleted = sorted(
        path for path in remote if path not in local and any(path.startswith(f"{name}/") for name in pushed)
    )
    statuses = [_status(s, remote, changed, deleted) for s in staged]
    statuses += [ConfigStatus(c.name, "kept", c.rows) for c in kept]
    result = PushResult(repo, url, sorted(statuses, key=lambda s: s.name), private=info.private, gated=info.gated)
    if changed or deleted:
        session.step = "uploading and committing"
        operations: list[Any] = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(local[p])) for p in changed]
        operations += [CommitOperationDelete(path_in_repo=p) for p in deleted]
        names = [s.name for s in statuses if s.state in ("added", "updated")] or ["the card"]
        commit = api.create_commit(
            repo,
            operations,
            commit_message=request.message or f"emgen {__version__}: update {', '.join(names)}",
            repo_type="dataset",
            parent_commit=info.sha,
        )
        result.commit, result.uploaded, result.deleted = commit.oid, changed, deleted
    _apply_settings(session, request, result)
    return result


def _remote_configs(
    api: HfApi, repo: str, revision: str, remote: dict[str, RepoFile], pushed: set[str], folder: Path
) -> list[CardConfig]:
    """Configurations in the repo that this push leaves alone, read from their manifests."""
    kept = []
    for path in sorted(remote):
        match = _REMOTE_MANIFEST.match(path)
        if match is None or match.group(1) in pushed:
            continue
        local = api.hf_hub_download(repo, path, repo_type="dataset", revision=revision, local_dir=folder)
        try:
            config = remote_config(match.group(1), Path(local).read_bytes(), list(remote))
            problems = schema_errors("manifest", config.manifest)
            if problems:
                raise ValueError(problems[0])
            Recipe.from_mapping(config.manifest["recipe"])
        except (ValueError, KeyError, TypeError, EmgenError) as exc:
            raise HubError(
                f"{repo}: {path} is not a manifest this emgen can read ({exc}); "
                "update emgen, or remove that configuration from the repo"
            ) from None
        kept.append(config)
    return kept


def _same(local: Path, remote: RepoFile | None) -> bool:
    if remote is None:
        return False
    data = local.read_bytes()
    if remote.lfs is not None:
        return hashlib.sha256(data).hexdigest() == remote.lfs.sha256
    return git_hash(data) == remote.blob_id


def _status(staged: StagedConfig, remote: dict[str, RepoFile], changed: list[str], deleted: list[str]) -> ConfigStatus:
    prefix = f"{staged.name}/"
    if not any(path.startswith(prefix) for path in remote):
        return ConfigStatus(staged.name, "added", staged.card.rows)
    touched = any(path.startswith(prefix) for path in [*changed, *deleted])
    return ConfigStatus(staged.name, "updated" if touched else "unchanged", staged.card.rows)


def _refuse_secrets(files: dict[str, Path], token: str) -> None:
    needle = token.encode()
    for path, file in files.items():
        if needle in file.read_bytes():
            raise HubError(f"refusing to upload {path}: it contains the Hub token")


def _apply_settings(session: _Session, request: PushRequest, result: PushResult) -> None:
    """Open a private repo with --public, and gate it with --gated; neither makes a commit."""
    changes: dict[str, Any] = {}
    if request.public and result.private:
        changes["private"] = False
    if request.gated is not None and result.gated != request.gated:
        changes["gated"] = request.gated
    if not changes:
        return
    session.step = "changing the repo's settings"
    session.api.update_repo_settings(request.repo, repo_type="dataset", **changes)
    result.private = False if "private" in changes else result.private
    result.gated = changes.get("gated", result.gated)
