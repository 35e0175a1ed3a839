"""Ask one research question through the Python API and print the cited answer.

    python examples/ask.py "Which college did the author of The Selfish Gene attend?"

Uses the embedded model and the bundled demo corpus unless LEADLINE_BASE_URL / LEADLINE_CORPUS say
otherwise.
"""

from __future__ import annotations

import sys

import leadline


def main() -> None:
    question = " ".join(sys.argv[1:]) or "Alvaro Mexia had a diplomatic mission with which tribe?"
    result = leadline.research(question, budget=leadline.Budget(tokens=512, searches=3))
    print(f"Answer: {result.answer}")
    for c in result.citations:
        print(f"  [{c.n}] {c.title} ({c.source}): {c.passage[:160]}")
    s = result.spend
    print(
        f"Spent {s.tokens} generated tokens, {s.searches} searches, {s.seconds:.1f} s (run {result.run_id})"
    )


if __name__ == "__main__":
    main()
