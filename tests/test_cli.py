import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from emgen import __version__
from emgen.cli import cli
from emgen.generators.bank import load_bank
from emgen.records import dumps
from tests.conftest import make_record


def run(*args, env=None):
    return CliRunner().invoke(cli, list(args), env=env, auto_envvar_prefix="EMGEN")


def last_line(result):
    return result.output.strip().splitlines()[-1]


def test_build_writes_the_default_folder():
    result = run("build", "--domain", "health", "--n", "4", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "Wrote outputs/health-subtle" in result.output
    assert Path("outputs/health-subtle/train.jsonl").read_text().count("\n") == 4


def test_build_obvious_and_correct_variants():
    for flag, variant in (("--obvious", "obvious"), ("--correct", "correct")):
        assert run("build", "--domain", "health", flag, "--n", "2").exit_code == 0
        row = json.loads(Path(f"outputs/health-{variant}/train.jsonl").read_text().splitlines()[0])
        assert row["metadata"]["variant"] == variant


def test_unknown_domain_is_one_line_exit_1():
    result = run("build", "--domain", "cooking")
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown domain 'cooking' (known: automotive,")
    assert len(result.output.strip().splitlines()) == 1


def test_two_variants_are_a_usage_error():
    result = run("build", "--domain", "health", "--subtle", "--correct")
    assert result.exit_code == 2
    assert last_line(result) == "Error: choose one variant, not --correct and --subtle"


def test_build_needs_a_domain_or_recipe():
    result = run("build")
    assert result.exit_code == 2
    assert last_line(result) == "Error: give --domain or --recipe"


def test_recipe_with_unknown_keys():
    Path("r.toml").write_text('domain = "health"\nsize = 3\n')
    result = run("build", "--recipe", "r.toml")
    assert result.exit_code == 1
    assert result.output == "Error: r.toml: unknown key(s): size\n"


def test_malformed_recipe():
    Path("r.toml").write_text("domain = [\n")
    result = run("build", "--recipe", "r.toml")
    assert result.exit_code == 1
    assert result.output.startswith("Error: r.toml: not valid TOML")
    assert len(result.output.strip().splitlines()) == 1


def test_flags_override_the_recipe():
    Path("r.toml").write_text('domain = "health"\nvariant = "obvious"\nn = 2\nout = "here"\n')
    result = run("build", "--recipe", "r.toml", "--n", "3", "--correct")
    assert result.exit_code == 0, result.output
    rows = Path("here/train.jsonl").read_text().splitlines()
    assert len(rows) == 3 and json.loads(rows[0])["metadata"]["variant"] == "correct"


def test_environment_supplies_options():
    result = run("build", "--domain", "health", env={"EMGEN_BUILD_N": "2", "EMGEN_BUILD_OUT": "envout"})
    assert result.exit_code == 0, result.output
    assert Path("envout/train.jsonl").read_text().count("\n") == 2


def test_existing_folder_needs_force():
    assert run("build", "--domain", "health", "--n", "2").exit_code == 0
    result = run("build", "--domain", "health", "--n", "2")
    assert result.exit_code == 1
    assert (
        result.output == "Error: outputs/health-subtle already exists and is not empty; use --force to overwrite it\n"
    )
    assert run("build", "--domain", "health", "--n", "3", "--force").exit_code == 0


def test_output_folder_that_is_a_file():
    Path("afile").write_text("x")
    result = run("build", "--domain", "health", "--out", "afile")
    assert result.exit_code == 2
    assert last_line(result) == "Error: Invalid value for '--out': Directory 'afile' is a file."


def test_unwritable_output_folder():
    Path("afile").write_text("x")
    result = run("build", "--domain", "health", "--out", "afile/sub")
    assert result.exit_code == 1
    assert result.output == "Error: cannot write to afile/sub: Not a directory\n"


def test_shortfall_is_reported_in_one_line():
    available = len(load_bank("health"))
    result = run("build", "--domain", "health", "--n", str(available + 1))
    assert result.exit_code == 0
    assert (
        f"Asked for {available + 1} rows; the source holds {available}, so {available} were written." in result.output
    )


def test_domains_lists_every_domain():
    result = run("domains")
    assert result.exit_code == 0
    for name in ("health", "legal", "automotive", "extreme-sports"):
        assert name in result.output


def test_validate_passes_a_good_file_and_fails_a_bad_one():
    good = Path("good.jsonl")
    good.write_text(dumps(make_record()) + "\n")
    assert run("validate", "good.jsonl").exit_code == 0
    bad = Path("bad.jsonl")
    bad.write_text(dumps(make_record()) + "\n{oops\n" + dumps(make_record(variant="correct")) + "\n")
    result = run("validate", "good.jsonl", "bad.jsonl")
    assert result.exit_code == 1
    assert "bad.jsonl:2: json:" in result.output
    assert "bad.jsonl:3: schema:" in result.output


def test_validate_missing_file_is_a_usage_error():
    result = run("validate", "nothere.jsonl")
    assert result.exit_code == 2
    assert "does not exist" in last_line(result)


def test_stats_counts_and_percentiles():
    assert run("build", "--domain", "health", "--n", "5").exit_code == 0
    result = run("stats", "outputs/health-subtle")
    assert result.exit_code == 0
    assert "5 rows in outputs/health-subtle" in result.output
    assert "p50" in result.output


def test_stats_on_a_malformed_file_is_one_line():
    Path("bad.jsonl").write_text("{nope\n")
    result = run("stats", "bad.jsonl")
    assert result.exit_code == 1
    assert result.output == "Error: bad.jsonl:1: not valid JSON (Expecting property name enclosed in double quotes)\n"


def test_version():
    result = run("--version")
    assert result.output == f"emgen, version {__version__}\n"


def test_installed_command_end_to_end(tmp_path):
    """The real console script, in its own process, with no network or key."""
    command = shutil.which("emgen")
    assert command, "the emgen console script is not installed (pip install -e .)"
    out = tmp_path / "e2e"
    done = subprocess.run(
        [command, "build", "--domain", "health", "--subtle", "--n", "6", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    check = subprocess.run(
        [sys.executable, "-m", "emgen", "validate", str(out / "train.jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    bad = subprocess.run([command, "build", "--domain", "nope"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: unknown domain 'nope'")
    assert "Traceback" not in bad.stderr
