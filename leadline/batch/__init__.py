"""Unattended report generation at scale: batches of questions on one machine or many.

- :mod:`~leadline.batch.inputs` reads .txt / .jsonl / .csv question files, reporting bad lines;
- :mod:`~leadline.batch.plan` opens (or continues) a batch in the run database with its plan and pool;
- :mod:`~leadline.batch.worker` claims jobs under leases and runs them; :mod:`~leadline.batch.runner`
  runs workers (in process, as processes, on Ray) and writes :mod:`~leadline.batch.reports`;
- :mod:`~leadline.batch.library` runs :meth:`leadline.Researcher.abatch` for the ``processes`` and
  ``ray`` executors (registered with the API on import).
"""

from leadline.batch import library as _library  # noqa: F401 - registers the database executor
from leadline.batch.items import BatchItem, BatchJobError

__all__ = ["BatchItem", "BatchJobError"]
