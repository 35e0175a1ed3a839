"""leadline: deep research with a two-axis budget controller.

Ask a question, get a cited answer (or a report): ``leadline.research("...", budget=leadline.Budget(
tokens=1024, searches=4))``. A LangGraph loop interleaves reasoning (LLM tokens) with search calls and
page reads, and the budget controller decides how much of each a question gets.
"""

from leadline.api import BatchItem, Researcher, aresearch, research
from leadline.batch import library as _batch_library  # noqa: F401 - the database batch executor
from leadline.budgets.controller import Allocation, Controller, Decision, FixedController, RunObservation
from leadline.budgets.ledger import Budget, Ledger, Spend
from leadline.budgets.runtime import RuntimeModel
from leadline.budgets.runtime_controller import RuntimeController
from leadline.budgets.tuned import TunedModel
from leadline.config import Settings
from leadline.errors import (
    BlockedURLError,
    BudgetError,
    BudgetExceededError,
    ConfigError,
    CorpusIndexError,
    FetchError,
    InvalidBudgetError,
    InvalidQuestionError,
    LeadlineError,
    LLMConnectionError,
    LLMError,
    LLMResponseError,
    ModelNotFoundError,
    ModelTooLargeError,
    RunNotFoundError,
    SchemaVersionError,
    SearchError,
    StorageError,
    ToolError,
)
from leadline.llm.base import Completion, GenerationParams, LLMClient, Message, Usage
from leadline.result import Citation, ResearchResult
from leadline.tools.base import Document, SearchBackend, SearchResult

__version__ = "0.1.0"

__all__ = [
    "Allocation",
    "BatchItem",
    "BlockedURLError",
    "Budget",
    "BudgetError",
    "BudgetExceededError",
    "Citation",
    "Completion",
    "ConfigError",
    "Controller",
    "CorpusIndexError",
    "Decision",
    "Document",
    "FetchError",
    "FixedController",
    "GenerationParams",
    "InvalidBudgetError",
    "InvalidQuestionError",
    "LLMClient",
    "LLMConnectionError",
    "LLMError",
    "LLMResponseError",
    "LeadlineError",
    "Ledger",
    "Message",
    "ModelNotFoundError",
    "ModelTooLargeError",
    "ResearchResult",
    "Researcher",
    "RunNotFoundError",
    "RunObservation",
    "RuntimeController",
    "RuntimeModel",
    "SchemaVersionError",
    "SearchBackend",
    "SearchError",
    "SearchResult",
    "Settings",
    "Spend",
    "StorageError",
    "ToolError",
    "TunedModel",
    "Usage",
    "__version__",
    "aresearch",
    "research",
]
