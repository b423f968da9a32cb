"""The cluster's budget actor under pressure, on a local Ray instance: more callers than
its concurrency never deadlock it, a cancelled caller gives back what it held, a fatal
answer stops a Ray batch as it stops a local one, and workers get only the run's keys."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import LoopbackServer
from tests.support.synthetic import unknown_model_batch
from yttl.config import Profile, Settings
from yttl.distributed import RemoteAdmission, budget_actor, secrets_for
from yttl.scheduler import LaneSpec

ray = pytest.importorskip("ray", reason="the ray extra is not installed")


def test_workers_get_the_keys_of_the_run_and_no_others() -> None:
    environ = {"OPENAI_API_KEY": "sk-1", "GROQ_API_KEY": "gsk-2", "HF_TOKEN": "hf-3",
               "GITHUB_TOKEN": "ghp-4", "AWS_SESSION_TOKEN": "aws-5", "LAB_API_KEY": "lab-6",
               "OTHER_API_KEY": "x-7"}  # fmt: skip
    settings = Settings(llm_provider="openai", whisper_provider="groq",
                        profiles={"lab": Profile("lab", "http://127.0.0.1:1/v1", "m")})  # fmt: skip
    assert secrets_for(settings, environ) == {"OPENAI_API_KEY": "sk-1", "GROQ_API_KEY": "gsk-2",
                                              "LAB_API_KEY": "lab-6"}  # fmt: skip
    local = Settings(llm_provider="local")
    assert secrets_for(local, environ) == {"HF_TOKEN": "hf-3"}  # the hub, for the model


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


SPEC = LaneSpec("p", 1, breaker=None)


def test_more_waiting_callers_than_the_actor_serves_at_once_do_not_deadlock_it(
    local_ray: Any,
) -> None:
    """One slot, an actor that runs two calls at once, three callers: two wait in enter
    and fill it, and only a leave in its own group can free the slot."""
    actor = budget_actor(local_ray, max_concurrency=2)

    async def caller(i: int) -> int:
        lane = RemoteAdmission(actor, "p", SPEC)
        probe = await lane.enter(f"call {i}", 0)
        await asyncio.sleep(0.1)
        await lane.leave("success", probe, False)
        return i

    async def main() -> list[int]:
        return list(await asyncio.wait_for(asyncio.gather(*(caller(i) for i in range(3))), 60))

    assert sorted(asyncio.run(main())) == [0, 1, 2]


def test_a_cancelled_caller_gives_back_its_slot(local_ray: Any) -> None:
    actor = budget_actor(local_ray)

    async def main() -> dict[str, Any]:
        holder = RemoteAdmission(actor, "p", SPEC)
        probe = await holder.enter("holder", 0)
        waiting = asyncio.create_task(RemoteAdmission(actor, "p", SPEC).enter("waiter", 0))
        await asyncio.sleep(0.5)  # the waiter is queued in the actor for the one slot
        waiting.cancel()  # Ctrl-C, a worker that dies
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await holder.leave("success", probe, False)  # the slot would now go to the waiter
        late = RemoteAdmission(actor, "p", SPEC)
        await asyncio.wait_for(late.enter("late", 0), 30)  # and comes back to be used
        await late.leave("success", False, False)
        return dict(await actor.stats.options(concurrency_group="control").remote())

    stats = asyncio.run(main())
    assert stats["lanes"]["p"]["in_flight"] == 0 and stats["held"] == 0


def test_an_unknown_model_stops_a_ray_batch_as_it_stops_a_local_one(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    result, index = unknown_model_batch(server, tmp_path, clean_env, "--executor", "ray")
    assert result.returncode == 2, result.stderr
    assert [v["status"] for v in index["videos"]] == ["failed"] * 4
    assert index["videos"][-1]["error"]["message"].startswith(("not started", "stopped"))
    # the first answers stopped the batch: each video asks 3 sections at once, and the
    # next may start when its predecessor's transcript is done, before those answers
    # are back (a loaded machine); never does every video ask (4 x 3 calls)
    assert len(server.state.calls) < 12
