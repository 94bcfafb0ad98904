"""emgen: build the datasets emergent-misalignment research trains on."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emgen")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from emgen.errors import EmgenError  # noqa: E402
from emgen.pipeline import BuildResult, build  # noqa: E402
from emgen.recipe import Recipe  # noqa: E402
from emgen.records import read_records, write_records  # noqa: E402

__all__ = ["BuildResult", "EmgenError", "Recipe", "__version__", "build", "read_records", "write_records"]
