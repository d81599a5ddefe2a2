"""The HTTP handler keeps its request threads, and each request's database work stays in one."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from studio.asgi import OneHopASGIHandler

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def _threads() -> set[int]:
    return {t.ident for t in threading.enumerate()}


async def test_sequential_requests_reuse_one_thread():
    handler = OneHopASGIHandler()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=handler), base_url="http://testserver"
    ) as client:
        assert (await client.get("/healthz")).status_code == 200
        before = _threads()
        for _ in range(20):
            assert (await client.get("/healthz")).status_code == 200
        assert _threads() - before == set()
        assert len(handler.idle) == 1
    handler.close_idle_threads()


async def test_concurrent_requests_get_threads_of_their_own_and_the_idle_ones_are_bounded(
    monkeypatch,
):
    monkeypatch.setattr(OneHopASGIHandler, "IDLE_THREADS", 3)
    handler = OneHopASGIHandler()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=handler), base_url="http://testserver"
    ) as client:
        answers = await asyncio.gather(*(client.get("/healthz") for _ in range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert len(handler.idle) <= 3
    handler.close_idle_threads()
