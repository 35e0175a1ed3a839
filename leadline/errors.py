"""One exception root for everything leadline raises on purpose.

Callers catch :class:`LeadlineError` to handle any failure of ours; the CLI turns it into a one-line
message and a non-zero exit code. Errors that end a run carry what the run gathered so far in
``run_data`` (evidence, partial answer, spend), so a hard limit or a dead server loses nothing.

::

    LeadlineError
    ├── ConfigError              bad settings, unknown model or corpus, bad input to the API
    │   └── InvalidQuestionError empty or blank question
    ├── BudgetError              budget problems
    │   ├── InvalidBudgetError   zero, negative or NaN limits
    │   └── BudgetExceededError  a hard cap refused a call (control flow inside the loop)
    ├── LLMError                 anything from a language model
    │   ├── LLMConnectionError   server unreachable / connection refused / deadline passed
    │   ├── LLMResponseError     the server answered with an error status or a malformed body
    │   ├── ModelNotFoundError   unknown or uninstalled model, checksum mismatch
    │   └── ModelTooLargeError   the model would not fit the memory available
    ├── ToolError                search and fetch
    │   ├── SearchError          a search backend failed
    │   ├── CorpusIndexError     a corpus index is missing, unknown or corrupt
    │   └── FetchError           a page could not be fetched safely (see tools.fetcher)
    │       └── BlockedURLError  the SSRF guard or robots.txt refused the URL
    ├── StorageError             the database refused or is unusable
    │   └── SchemaVersionError   the database was written by a newer leadline
    └── RunNotFoundError         no run with that id
"""

from __future__ import annotations

from typing import Any


class LeadlineError(Exception):
    """Root of every error leadline raises on purpose."""

    def __init__(self, message: str, *, run_data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.run_data = run_data or {}


class ConfigError(LeadlineError):
    """Bad settings or arguments: unknown model, unknown corpus, malformed option."""


class InvalidQuestionError(ConfigError):
    """The question is empty or blank."""


class BudgetError(LeadlineError):
    """A problem with a budget."""


class InvalidBudgetError(BudgetError, ValueError):
    """A budget limit is zero, negative, NaN or otherwise unusable."""


class BudgetExceededError(BudgetError):
    """A hard cap refused a call; the loop turns this into a forced answer."""


class LLMError(LeadlineError):
    """A language-model call failed."""


class LLMConnectionError(LLMError):
    """The LLM server could not be reached in time."""


class LLMResponseError(LLMError):
    """The LLM server answered with an error status or a body we cannot read."""

    def __init__(self, message: str, *, status_code: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class ModelNotFoundError(LLMError, ConfigError):
    """The model is unknown, not installed, or its file failed verification."""


class ModelTooLargeError(LLMError, ConfigError):
    """The model would not fit the memory this machine has available."""


class ToolError(LeadlineError):
    """A search or fetch tool failed."""


class SearchError(ToolError):
    """A search backend failed."""


class CorpusIndexError(ToolError):
    """A corpus index is missing, unknown or corrupt."""


class FetchError(ToolError):
    """A page could not be fetched; the agent sees it as an observation."""

    def __init__(self, message: str, *, url: str = "", reason: str = "error") -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason


class BlockedURLError(FetchError):
    """The SSRF guard, the scheme check or robots.txt refused the URL."""


class StorageError(LeadlineError):
    """The database refused a write or cannot be used."""


class SchemaVersionError(StorageError):
    """The database was written by a newer schema than this leadline knows."""


class RunNotFoundError(LeadlineError, KeyError):
    """No run with that id exists in the store."""

    def __str__(self) -> str:  # KeyError quotes its message; we do not want that
        return self.message


__all__ = [
    "BlockedURLError",
    "BudgetError",
    "BudgetExceededError",
    "ConfigError",
    "CorpusIndexError",
    "FetchError",
    "InvalidBudgetError",
    "InvalidQuestionError",
    "LLMConnectionError",
    "LLMError",
    "LLMResponseError",
    "LeadlineError",
    "ModelNotFoundError",
    "ModelTooLargeError",
    "RunNotFoundError",
    "SchemaVersionError",
    "SearchError",
    "StorageError",
    "ToolError",
]
