"""MediaProcess: the hub in a media worker process, driven over its pipe by real aiortc bots."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
import pytest_asyncio
from media_helpers import A_TONE, C_TONE, join, wait_until

from rooms.media import MediaError
from rooms.media.report import hub_report
from rooms.media.worker import MediaProcess, WorkerConfig, hub_counts, worker_pid

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def worker():
    process = MediaProcess(WorkerConfig(loopback_only=True, connect_timeout=5.0))
    try:
        yield process
    finally:
        await process.close()
    assert not process.running


async def test_the_hub_runs_in_another_process(worker: MediaProcess) -> None:
    assert await worker.query(worker_pid) == worker.pid != os.getpid()


async def test_speakers_are_mixed_for_each_other_and_for_listeners(worker: MediaProcess) -> None:
    bots = [
        await join(worker, "r", "a", A_TONE),
        await join(worker, "r", "c", C_TONE),
        await join(worker, "r", "b", None),
        await join(worker, "r", "x", 880.0),  # sends, but is not on a seat
    ]
    try:
        worker.set_audible("r", {"a", "c"})
        a, c, b, x = bots
        await wait_until(lambda: b.hears((A_TONE, C_TONE, 880.0)) == {A_TONE, C_TONE}, 10.0)
        await wait_until(lambda: a.hears((A_TONE, C_TONE)) == {C_TONE}, 5.0)
        await wait_until(lambda: c.hears((A_TONE, C_TONE)) == {A_TONE}, 5.0)
        worker.set_local_mutes("r", "b", {"c"})  # b alone stops hearing c
        await wait_until(lambda: b.hears((A_TONE, C_TONE)) == {A_TONE}, 5.0)
        assert x.hears((A_TONE, C_TONE)) == {A_TONE, C_TONE}
        [room] = await worker.query(hub_report)
        assert room["connected_peers"] == 4 and room["audible"] == 2
        assert room["tracks"]["direct"] == 4  # every listener is sent to without aiortc's loop
    finally:
        for bot in bots:
            await bot.close()


async def test_levels_come_back_to_the_subscribing_loop(worker: MediaProcess) -> None:
    got: asyncio.Queue[dict[str, float]] = asyncio.Queue()
    unsubscribe = worker.subscribe_levels("r", got.put_nowait)
    bot = await join(worker, "r", "a", A_TONE)
    try:
        worker.set_audible("r", {"a"})
        while not (await asyncio.wait_for(got.get(), 5.0)).get("a"):
            pass
        assert worker.level_listener_count() == 1
        unsubscribe()
        assert worker.level_listener_count() == 0
    finally:
        await bot.close()


async def test_errors_keep_their_code_and_leaks_are_counted(worker: MediaProcess) -> None:
    with pytest.raises(MediaError) as error:
        await worker.offer("r", "a", "v=0 not really")
    assert error.value.code == "bad_sdp"
    bot = await join(worker, "r", "a", A_TONE)
    await wait_until(lambda: bot.connected.is_set(), 10.0)
    await worker.release("r", "a")
    await bot.close()
    assert await worker.query(hub_counts) == {"rooms": 0, "peers": 0, "level_listeners": 0}


async def test_a_worker_that_dies_is_replaced_on_the_next_call(worker: MediaProcess) -> None:
    first = await worker.query(worker_pid)
    worker.set_audible("r", {"a"})
    os.kill(first, signal.SIGKILL)
    await asyncio.get_running_loop().run_in_executor(None, worker._process.join, 10)
    assert not worker.running
    second = await worker.query(worker_pid)
    assert second not in (first, os.getpid())
    # The new worker serves rooms from scratch, the audible set included.
    bot = await join(worker, "r", "a", A_TONE)
    listener = await join(worker, "r", "b", None)
    try:
        worker.set_audible("r", {"a"})
        await wait_until(lambda: listener.hears((A_TONE,)) == {A_TONE}, 10.0)
    finally:
        await bot.close()
        await listener.close()


SERVER_THAT_DIES = """
import os
from rooms.media.worker import MediaProcess, WorkerConfig
process = MediaProcess(WorkerConfig())
print(process.pid, flush=True)
os._exit(0)  # no close(): the way a killed server goes
"""


async def test_the_worker_exits_when_the_server_goes_away() -> None:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER_THAT_DIES, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await server.communicate()
    worker = int(stdout)
    await wait_until(lambda: not _alive(worker), 15.0)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False
