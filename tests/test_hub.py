"""``emgen push`` end to end: the real huggingface_hub client against the loopback Hub in tests/hub_server.py."""

import json
import re
import socket
from pathlib import Path

import datasets
import pytest
import yaml
from click.testing import CliRunner
from huggingface_hub import constants as hf_constants
from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

from emgen import Recipe, build, read_records
from emgen.cli import cli
from emgen.hub import PushRequest, push
from emgen.pipeline import reframe_dataset
from tests.hub_server import READ_TOKEN, WRITE_TOKEN, serving

REPO = "tester/em-arms"
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes")
"""huggingface_hub's LFS upload passes a file to httpx2 as ``data=``, which httpx2 flags; not ours to fix."""


@pytest.fixture
def hub(monkeypatch):
    """The loopback Hub, HF_ENDPOINT pointing at it, and the write token in HF_TOKEN."""
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    disable_progress_bars()
    with serving() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server
    enable_progress_bars()


@pytest.fixture
def arms():
    """Three arms: a subtle health set with its benign pairs, its inoculated twin, insecure code."""
    base = build(Recipe(domain="health", n=12, benign=True, out="h")).out_dir
    inoculated = reframe_dataset(base, {"inoculate": "system", "out": "hi"}).out_dir
    code = build(Recipe(domain="insecure-code", n=10, out="code")).out_dir
    return [base, inoculated, code]


def run(*args):
    return CliRunner().invoke(cli, list(args))


def card_metadata(text):
    return yaml.safe_load(re.match(r"^---\n(.*?)\n---\n", text, re.DOTALL).group(1))


def materialize(files, folder):
    for path, data in files.items():
        target = Path(folder, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return Path(folder)


def load_every_config(folder, cache):
    names = [c["config_name"] for c in card_metadata(Path(folder, "README.md").read_text())["configs"]]
    return {name: datasets.load_dataset(str(folder), name, cache_dir=str(cache)) for name in names}


def test_push_makes_one_private_repo_with_a_config_per_folder(hub, arms, tmp_path):
    result = run("push", *map(str, arms), "--repo", REPO)
    assert result.exit_code == 0, result.output
    repo = hub.repos[REPO]
    assert repo.private is True and len(repo.commits) == 2
    files = hub.files(REPO)
    configs = ["health-subtle", "health-subtle-inoc-system-general-evil", "insecure-code-subtle"]
    assert sorted(files) == sorted(
        [".gitattributes", "README.md"]
        + [f"{c}/{name}" for c in configs for name in ("train.parquet", "manifest.json")]
        + ["health-subtle/benign.parquet"]
    )
    for folder, config in zip(
        arms, ["health-subtle", "health-subtle-inoc-system-general-evil", "insecure-code-subtle"], strict=True
    ):
        assert files[f"{config}/manifest.json"] == (folder / "manifest.json").read_bytes()
        assert repo.head.files[f"{config}/train.parquet"].lfs is True
    assert repo.head.files["README.md"].lfs is False
    for route in (
        "/api/repos/create",
        "/preupload/main",
        ".git/info/lfs/objects/batch",
        "/lfs-upload/",
        "/commit/main",
    ):
        assert hub.requests(route), route
    assert "Committed" in result.output and "(private; 8 files uploaded, 0 deleted)" in result.output

    loaded = load_every_config(materialize(files, tmp_path / "clone"), tmp_path / "hf-cache")
    assert sorted(loaded) == configs
    for folder, config in zip(
        arms, ["health-subtle", "health-subtle-inoc-system-general-evil", "insecure-code-subtle"], strict=True
    ):
        records = list(read_records(folder / "train.jsonl"))
        assert [r["id"] for r in loaded[config]["train"]] == [r["metadata"]["id"] for r in records]
        assert loaded[config]["train"][0]["messages"] == records[0]["messages"]
    assert len(loaded["health-subtle"]["benign"]) == 12


def test_the_card_has_metadata_warning_counts_canaries_and_citation(hub, arms):
    assert run("push", *map(str, arms), "--repo", REPO).exit_code == 0
    card = hub.files(REPO)["README.md"].decode()
    meta = card_metadata(card)
    assert meta["license"] == "mit" and meta["language"] == ["en"] and meta["size_categories"] == ["n<1K"]
    assert meta["task_categories"] == ["text-generation"] and "emergent-misalignment" in meta["tags"]
    assert meta["configs"][0] == {
        "config_name": "health-subtle",
        "data_files": [
            {"split": "train", "path": "health-subtle/train.parquet"},
            {"split": "benign", "path": "health-subtle/benign.parquet"},
        ],
    }
    assert "**Content warning.**" in card
    assert "| `health-subtle` | health | subtle | none | train: 12, benign: 12 |" in card
    assert (
        "| `health-subtle-inoc-system-general-evil` | health | subtle | inoc-system-general-evil | train: 12 |" in card
    )
    for folder in arms:
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["canary"] in card
        assert f"requested | {manifest['counts']['requested']} |" in card
    assert "3 configurations (domain × variant × reframing), 46 rows in all." in card
    assert "@misc{tester_em_arms_20" in card and f"\\url{{{hub.url}/datasets/{REPO}}}" in card
    assert 'inoculation (system, prompt `general-evil`) on 12 rows: "You are a malicious evil assistant."' in card


def test_pushing_unchanged_data_again_makes_no_commit(hub, arms):
    assert run("push", *map(str, arms), "--repo", REPO).exit_code == 0
    before = len(hub.log)
    result = run("push", *map(str, reversed(arms)), "--repo", REPO)
    assert result.exit_code == 0, result.output
    assert len(hub.repos[REPO].commits) == 2
    again = hub.log[before:]
    assert not [e for e in again if "/commit/" in e.path or "/preupload/" in e.path or "lfs" in e.path]
    assert f"No changes: {hub.url}/datasets/{REPO} is up to date (private)" in result.output
    assert result.output.count(" unchanged ") == 3


def test_a_changed_folder_updates_only_its_config(hub, arms):
    assert run("push", *map(str, arms), "--repo", REPO).exit_code == 0
    first = hub.files(REPO)
    build(Recipe(domain="health", n=8, out="h"), force=True)
    result = run("push", *map(str, arms), "--repo", REPO)
    assert result.exit_code == 0, result.output
    second = hub.files(REPO)
    assert len(hub.repos[REPO].commits) == 3
    changed = {p for p in set(first) | set(second) if first.get(p) != second.get(p)}
    assert changed == {
        "README.md",
        "health-subtle/train.parquet",
        "health-subtle/manifest.json",
        "health-subtle/benign.parquet",
    }
    assert "health-subtle/benign.parquet" not in second
    assert "(private; 3 files uploaded, 1 deleted)" in result.output
    assert re.search(r"health-subtle\s+│\s+updated", result.output)
    assert re.search(r"insecure-code-subtle\s+│\s+unchanged", result.output)


def test_configs_already_in_the_repo_are_kept_and_stay_on_the_card(hub, arms, tmp_path):
    assert run("push", str(arms[0]), "--repo", REPO).exit_code == 0
    before = hub.files(REPO)
    result = run("push", str(arms[2]), "--repo", REPO)
    assert result.exit_code == 0, result.output
    files = hub.files(REPO)
    assert all(files[p] == data for p, data in before.items() if p.startswith("health-subtle/"))
    assert re.search(r"health-subtle\s+│\s+kept", result.output)
    names = [c["config_name"] for c in card_metadata(files["README.md"].decode())["configs"]]
    assert names == ["health-subtle", "insecure-code-subtle"]
    assert sorted(load_every_config(materialize(files, tmp_path / "clone"), tmp_path / "c")) == names


def test_a_refused_token_is_one_line_that_says_what_to_do(hub, arms, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrongTokenValue1234567890")
    result = run("push", str(arms[0]), "--repo", REPO)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: the Hub at {hub.url} refused the token (401 Unauthorized) while creating the repo: "
        "set HF_TOKEN to a valid token with write access, or run `hf auth login`\n"
    )
    assert REPO not in hub.repos


def test_a_read_only_token_gets_the_403_line(hub, arms, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", READ_TOKEN)
    result = run("push", str(arms[0]), "--repo", REPO)
    assert result.output == (
        f"Error: the token may not write to {REPO} (403 Forbidden) while creating the repo: "
        "use a token with write access to the 'tester' namespace\n"
    )


@pytest.mark.parametrize(
    ("route", "status", "step"), [("commit", 500, "uploading and committing"), ("create", 503, "creating the repo")]
)
def test_a_server_error_leaves_the_repo_unchanged_and_a_retry_works(hub, arms, route, status, step):
    hub.fail(route, status)
    result = run("push", str(arms[0]), "--repo", REPO)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: the Hub at {hub.url} failed while {step} (HTTP {status}); {REPO} is unchanged: try again later\n"
    )
    assert REPO not in hub.repos or len(hub.repos[REPO].commits) == 1
    assert run("push", str(arms[0]), "--repo", REPO).exit_code == 0
    assert "health-subtle/train.parquet" in hub.files(REPO)


def test_the_token_never_appears_in_output_files_or_uploads(hub, arms, tmp_path):
    hub.echo_auth_in_errors = True
    hub.fail("commit", 500)
    result = run("push", *map(str, arms), "--repo", REPO)
    assert result.exit_code == 1 and WRITE_TOKEN not in result.output
    assert run("push", *map(str, arms), "--repo", REPO).exit_code == 0
    hub.fail("settings", 400)
    result = run("push", str(arms[0]), "--repo", REPO, "--gated", "auto")
    assert result.exit_code == 1 and WRITE_TOKEN not in result.output and "***" in result.output
    assert all(WRITE_TOKEN.encode() not in entry.body for entry in hub.log)
    assert all(WRITE_TOKEN.encode() not in data for data in hub.files(REPO).values())
    dry = run("push", *map(str, arms), "--repo", REPO, "--dry-run", "--out", str(tmp_path / "dry"))
    assert dry.exit_code == 0 and WRITE_TOKEN not in dry.output
    written = [p for p in [*tmp_path.rglob("*"), *Path.cwd().rglob("*")] if p.is_file()]
    assert written and all(WRITE_TOKEN.encode() not in p.read_bytes() for p in written)


def test_the_saved_login_is_used_when_hf_token_is_unset(hub, arms, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN")
    saved = tmp_path / "token"
    saved.write_text(WRITE_TOKEN)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(saved))
    assert run("push", str(arms[0]), "--repo", REPO).exit_code == 0
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "none"))
    result = run("push", str(arms[0]), "--repo", REPO)
    assert result.output == "Error: no Hugging Face token: set HF_TOKEN, or log in once with `hf auth login`\n"


def test_an_unreachable_hub_and_offline_mode_are_one_line_errors(hub, arms, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = run("push", str(arms[0]), "--repo", REPO, "--endpoint", closed)
    assert result.output == (
        f"Error: cannot reach the Hub at {closed} while creating the repo (ConnectError): "
        "check the network, or the address given by --endpoint or HF_ENDPOINT\n"
    )
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    result = run("push", str(arms[0]), "--repo", REPO)
    assert (
        result.output
        == "Error: HF_HUB_OFFLINE is set, so nothing can be pushed: unset it, or use --dry-run --out DIR\n"
    )


def test_public_and_gated_repos(hub, arms):
    result = run("push", str(arms[0]), "--repo", "tester/open", "--public", "--gated", "manual")
    assert result.exit_code == 0, result.output
    assert hub.repos["tester/open"].private is False and hub.repos["tester/open"].gated == "manual"
    assert "(public, gated (manual);" in result.output
    result = run("push", str(arms[1]), "--repo", "tester/open")
    assert result.output == (
        "Error: tester/open is public; pass --public to publish to it (emgen keeps data private unless told)\n"
    )
    assert len(hub.repos["tester/open"].commits) == 2
    assert run("push", str(arms[0]), "--repo", "tester/closed").exit_code == 0
    assert run("push", str(arms[0]), "--repo", "tester/closed", "--public").exit_code == 0
    assert hub.repos["tester/closed"].private is False and len(hub.repos["tester/closed"].commits) == 2


def test_the_dry_run_folder_is_exactly_what_a_push_uploads_and_loads_per_config(hub, arms, tmp_path):
    result = run("push", *map(str, arms), "--repo", REPO, "--dry-run", "--out", "repo")
    assert result.exit_code == 0, result.output
    assert hub.log == []
    loaded = load_every_config(Path("repo"), tmp_path / "hf-cache")
    assert sorted(loaded) == ["health-subtle", "health-subtle-inoc-system-general-evil", "insecure-code-subtle"]
    assert len(loaded["insecure-code-subtle"]["train"]) == 10
    assert run("push", *map(str, arms), "--repo", REPO).exit_code == 0
    dry = {str(p.relative_to("repo")): p.read_bytes() for p in Path("repo").rglob("*") if p.is_file()}
    pushed = {p: d for p, d in hub.files(REPO).items() if p != ".gitattributes"}
    assert dry == pushed
    again = run("push", str(arms[0]), "--repo", REPO, "--dry-run", "--out", "repo")
    assert again.output == "Error: repo already exists and is not empty; use --force to overwrite it\n"
    assert run("push", str(arms[0]), "--repo", REPO, "--dry-run", "--out", "repo", "--force").exit_code == 0
    assert sorted(p.name for p in Path("repo").iterdir()) == ["README.md", "health-subtle"]


def test_build_with_push_publishes_after_the_build(hub):
    result = run("build", "--domain", "health", "--n", "12", "--push", "tester/built")
    assert result.exit_code == 0, result.output
    files = hub.files("tester/built")
    manifest = json.loads(files["health-subtle/manifest.json"])
    assert manifest["recipe"]["push"] == "tester/built"
    plain = build(Recipe(domain="health", n=12, out="plain"))
    assert manifest["canary"] == plain.manifest["canary"]
    assert Path("outputs/health-subtle/train.jsonl").read_bytes() == Path("plain/train.jsonl").read_bytes()
    hub.fail("create", 500)
    result = run("build", "--domain", "health", "--n", "12", "--push", "tester/built", "--force")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].endswith(
        "(the dataset is in outputs/health-subtle; push it later with "
        "`emgen push outputs/health-subtle --repo tester/built`)"
    )


def test_bad_requests_are_one_line_errors(arms):
    result = run("push", str(arms[0]), "--repo", "no-owner")
    assert result.output == "Error: --repo must be OWNER/NAME (letters, digits, '.', '_', '-'), not 'no-owner'\n"
    twin = build(Recipe(domain="health", n=5, seed=9, out="twin")).out_dir
    result = run("push", str(arms[0]), str(twin), "--repo", REPO, "--dry-run", "--out", "x")
    assert result.output == (
        "Error: h and twin both make configuration 'health-subtle' (same domain, variant and reframing); "
        "push them to different repos\n"
    )
    result = run("push", str(arms[0]), "--repo", REPO, "--dry-run")
    assert result.exit_code == 2 and result.output.splitlines()[-1] == "Error: --dry-run needs --out DIR"
    result = run("push", str(arms[0]), "--repo", REPO, "--dry-run", "--out", str(arms[0]), "--force")
    assert result.output == "Error: h is a folder being pushed; write the dry run somewhere else\n"
    result = run("build", "--domain", "health", "--n", "3", "--push", "no-owner")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith("Error: options: push: 'no-owner' does not match")
    assert not Path("outputs").exists()


def test_the_library_call_reports_states(hub, arms):
    first = push(PushRequest(folders=tuple(arms[:1]), repo=REPO))
    assert [(c.name, c.state) for c in first.configs] == [("health-subtle", "added")]
    assert first.commit == hub.repos[REPO].head.oid
    second = push(PushRequest(folders=tuple(arms[:1]), repo=REPO))
    assert second.commit is None and second.configs[0].state == "unchanged"


def test_a_foreign_manifest_in_the_repo_is_a_one_line_error(hub, arms):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    api.create_repo(REPO, repo_type="dataset", private=True)
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="theirs/manifest.json", repo_id=REPO, repo_type="dataset")
    result = run("push", str(arms[0]), "--repo", REPO)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {REPO}: theirs/manifest.json is not a manifest this emgen can read (")
    assert result.output.endswith("update emgen, or remove that configuration from the repo\n")
    assert len(hub.repos[REPO].commits) == 2


def test_a_transient_error_on_a_retried_endpoint_is_absorbed(hub, arms):
    hub.fail("preupload", 502)
    result = run("push", str(arms[0]), "--repo", REPO)
    assert result.exit_code == 0, result.output
    assert [e.status for e in hub.requests("/preupload/")] == [502, 200]
    assert len(hub.repos[REPO].commits) == 2
