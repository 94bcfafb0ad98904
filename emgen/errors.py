"""Errors the library raises for a user's mistake; the CLI prints them as one line."""


class EmgenError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""


class RecipeError(EmgenError):
    """A recipe file or flag combination is malformed."""


class ConflictError(RecipeError):
    """Options that cannot be combined; the CLI reports it as a usage error (exit 2)."""


class UnknownDomainError(EmgenError):
    """The requested domain is not registered."""


class InvalidRecordError(EmgenError):
    """A record or JSONL line does not satisfy the record contract."""


class OutputError(EmgenError):
    """The output folder cannot be written as asked."""


class LLMError(EmgenError):
    """An LLM endpoint refused the work (bad key, unknown model) or stayed unreachable."""
