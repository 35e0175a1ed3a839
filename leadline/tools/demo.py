"""Where the packaged demo corpus lives, so the default corpus works offline on a fresh install.

The corpus (17.5k Wikipedia passages, see ``data/DEMO_CORPUS_LICENSE.md``) is package data; this module
is the one place that knows its name.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from leadline.errors import ConfigError

DEMO_CORPUS_FILE = "demo_corpus.jsonl.gz"


def demo_corpus_path() -> Path:
    """The path of the packaged demo corpus (gzipped JSONL of ``{id, title, text}``)."""
    resource = files("leadline.tools").joinpath("data", DEMO_CORPUS_FILE)
    # An installed wheel or a source checkout gives a real file; a zipped install would not, and then
    # the corpus cannot be streamed from disk, so say so instead of failing later in the reader.
    path = Path(str(resource))
    if not path.is_file():
        raise ConfigError(f"the packaged demo corpus is missing ({path}); reinstall leadline")
    return path


__all__ = ["DEMO_CORPUS_FILE", "demo_corpus_path"]
