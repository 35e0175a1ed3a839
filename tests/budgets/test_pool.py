import asyncio
import threading

import pytest

from leadline.budgets.pool import BatchPool
from leadline.errors import InvalidBudgetError


def test_withdraw_grants_at_most_what_is_there() -> None:
    pool = BatchPool(tokens=100, searches=1)
    assert pool.withdraw(60, 3) == (60, 1)
    assert pool.withdraw(60, 1) == (40, 0)
    assert pool.snapshot().tokens == 0
    with pytest.raises(InvalidBudgetError):
        pool.deposit(-1, 0)


def test_threads_never_create_or_lose_budget() -> None:
    pool = BatchPool(tokens=10_000, searches=500)
    granted: list[tuple[int, int]] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(200):
            got = pool.withdraw(7, 1)
            with lock:
                granted.append(got)
            pool.deposit(got[0] // 2, 0)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = pool.snapshot()
    taken_tokens = sum(g[0] for g in granted)
    returned = sum(g[0] // 2 for g in granted)
    assert snap.tokens == 10_000 - taken_tokens + returned >= 0
    assert snap.searches == 500 - sum(g[1] for g in granted) >= 0
    assert snap.withdrawn_tokens == taken_tokens and snap.deposited_tokens == returned


def test_asyncio_tasks_share_the_pool() -> None:
    pool = BatchPool(tokens=0, searches=0)

    async def run() -> list[tuple[int, int]]:
        async def early_stop() -> None:
            await asyncio.sleep(0)
            await pool.adeposit(300, 2)

        async def needy() -> tuple[int, int]:
            await asyncio.sleep(0.01)
            return await pool.awithdraw(200, 1)

        results = await asyncio.gather(early_stop(), needy(), needy())
        return [r for r in results if r is not None]

    grants = asyncio.run(run())
    assert sorted(grants) == [(100, 1), (200, 1)]
    assert pool.snapshot().tokens == 0
