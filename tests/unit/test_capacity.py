"""Capacity: slots and machine headroom decide when a job may start."""

from __future__ import annotations

import asyncio

import pytest

from console.capacity import Capacity, Headroom, psutil_headroom


class Machine:
    """A probe the test controls."""

    def __init__(self, memory: float = 8000, cpu: float = 10) -> None:
        self.reading = Headroom(free_memory_mb=memory, cpu_percent=cpu)
        self.reads = 0

    def __call__(self) -> Headroom:
        self.reads += 1
        return self.reading


def test_slots_limit_running_jobs() -> None:
    capacity = Capacity(2, probe=Machine())
    assert capacity.try_acquire()
    assert capacity.try_acquire()
    assert not capacity.try_acquire()
    assert capacity.running == 2 and capacity.free == 0


async def test_release_frees_a_slot() -> None:
    capacity = Capacity(1, probe=Machine())
    await capacity.acquire()
    assert not capacity.try_acquire()
    await capacity.release()
    assert capacity.try_acquire()


def test_low_memory_blocks_an_additional_job_but_never_the_first() -> None:
    machine = Machine(memory=100)
    capacity = Capacity(4, min_free_memory_mb=512, probe=machine, probe_interval=0)
    assert capacity.try_acquire(), "with nothing running, a job always starts"
    assert not capacity.try_acquire(), "second job needs headroom"
    machine.reading = Headroom(free_memory_mb=4096, cpu_percent=10)
    assert capacity.try_acquire()


def test_busy_cpu_blocks_an_additional_job() -> None:
    machine = Machine(cpu=99)
    capacity = Capacity(4, max_cpu_percent=90, probe=machine, probe_interval=0)
    assert capacity.try_acquire()
    assert not capacity.try_acquire()


def test_readings_are_cached_for_the_probe_interval() -> None:
    machine = Machine()
    capacity = Capacity(8, probe=machine, probe_interval=3600)
    for _ in range(5):
        assert capacity.try_acquire()
    assert machine.reads == 1


async def test_acquire_waits_for_a_release() -> None:
    capacity = Capacity(1, probe=Machine())
    await capacity.acquire()
    waiter = asyncio.create_task(capacity.acquire())
    await asyncio.sleep(0)  # let the waiter block
    assert not waiter.done()
    await capacity.release()
    await asyncio.wait_for(waiter, 5)
    assert capacity.running == 1


async def test_acquire_waits_for_headroom_to_come_back() -> None:
    machine = Machine(memory=10)
    capacity = Capacity(2, min_free_memory_mb=512, probe=machine, probe_interval=0, recheck=0.01)
    await capacity.acquire()
    waiter = asyncio.create_task(capacity.acquire())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    machine.reading = Headroom(free_memory_mb=4096, cpu_percent=0)
    await asyncio.wait_for(waiter, 5)
    assert capacity.running == 2 and capacity.peak == 2


def test_psutil_probe_reads_the_machine() -> None:
    reading = psutil_headroom()
    assert reading.free_memory_mb > 0
    assert 0 <= reading.cpu_percent <= 100


def test_slots_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Capacity(0)
