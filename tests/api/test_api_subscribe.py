"""The server-sent-events subscription: one event per committed height, resumable with
Last-Event-ID at the next height with no gap and no duplicate — also across a restart of the
replica serving it — and the client library's subscribe does that by itself."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import aclosing

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from consensus.crypto import Verifier
from sequencing.client.client import AsyncOrdoClient
from sequencing.rollup.proofs import SliceProof

from .apiutil import ClusterThread, fresh_rollup

Event = tuple[int, SliceProof]


async def events(http: httpx.AsyncClient, rollup_id: int, *, last_event_id: int | None = None,
                 **params: str) -> AsyncIterator[Event]:
    """A minimal SSE reader (independent of the client library): (id, slice proof) per event."""
    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    async with http.stream("GET", f"/v1/rollups/{rollup_id}/subscribe", params=params, headers=headers,
                           timeout=httpx.Timeout(10, read=30)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event_id, data = None, []
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                data.append(line[6:])
            elif not line and data:
                proof = SliceProof.from_json(json.loads("\n".join(data)))
                assert event_id == proof.height and proof.rollup_id == rollup_id
                yield event_id, proof
                event_id, data = None, []


async def take(http: httpx.AsyncClient, rollup_id: int, count: int, **kwargs: object) -> list[Event]:
    out: list[Event] = []
    with trio.fail_after(30):
        async with aclosing(events(http, rollup_id, **kwargs)) as stream:  # type: ignore[arg-type]
            async for event in stream:
                out.append(event)
                if len(out) == count:
                    break
    return out


def heights(got: list[Event]) -> list[int]:
    return [h for h, _ in got]


async def test_resume_with_last_event_id_continues_at_the_next_height(
    cluster: ClusterThread, http: httpx.AsyncClient
) -> None:
    verifier = Verifier(cluster.committee)
    first = await take(http, 41, 5, **{"from": "1"})
    assert heights(first) == [1, 2, 3, 4, 5]
    for _, proof in first:
        proof.verify(verifier)
    resumed = await take(http, 41, 3, last_event_id=5, **{"from": "1"})  # the header wins over `from`
    assert heights(resumed) == [6, 7, 8]
    # without `from`, the stream starts at the current committed height
    height = (await cluster.status(0))["committed_height"]
    live = await take(http, 41, 2)
    assert live[0][0] >= height and heights(live) == [live[0][0], live[0][0] + 1]


async def test_skip_empty_sends_only_heights_with_transactions(cluster: ClusterThread, http: httpx.AsyncClient) -> None:
    rollup = fresh_rollup()
    async with AsyncOrdoClient(cluster.api(0)) as client:
        where = await client.wait_for_commit(await client.submit(rollup, b"skip-" + os.urandom(4).hex().encode()))
    got = await take(http, rollup, 1, skip_empty="true", **{"from": "1"})
    assert got[0][0] == where.height and got[0][1].transactions


async def test_raw_resume_across_a_restart_of_the_serving_replica(cluster: ClusterThread) -> None:
    replica = 1
    verifier = Verifier(cluster.committee)
    received: list[Event] = []
    async with httpx.AsyncClient(base_url=cluster.api(replica)) as http:

        async def read_until_cut() -> None:
            try:
                async for event in events(http, 43, **{"from": "1"}):
                    received.append(event)
            except httpx.HTTPError:
                pass  # the restart cut the connection

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_until_cut)
                while len(received) < 3:
                    await trio.sleep(0.02)
                await cluster.restart(replica)
                nursery.cancel_scope.cancel()
        last = received[-1][0]
        resumed = await take(http, 43, 5, last_event_id=last, **{"from": "1"})
    everything = received + resumed
    assert heights(everything) == list(range(1, len(everything) + 1)), "gap or duplicate across the restart"
    for _, proof in everything:
        proof.verify(verifier)


async def test_client_subscribe_resumes_across_a_restart_transparently(cluster: ClusterThread) -> None:
    replica, rollup = 2, fresh_rollup()
    payloads = [f"sub-{i}-{os.urandom(3).hex()}".encode() for i in range(6)]
    reconnects: list[Exception] = []
    seen: list[SliceProof] = []
    async with AsyncOrdoClient(cluster.api(replica), cluster.committee) as reader, \
            AsyncOrdoClient(cluster.api(0)) as writer:
        start = (await reader.status())["committed_height"]

        async def follow(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            stream = reader.subscribe(rollup, from_height=start, on_reconnect=reconnects.append)
            async with aclosing(stream):  # type: ignore[type-var]
                task_status.started()
                async for proof in stream:  # each proof already verified against the committee
                    seen.append(proof)

        with trio.fail_after(90):
            async with trio.open_nursery() as nursery:
                await nursery.start(follow)
                for payload in payloads[:3]:
                    await writer.wait_for_commit(await writer.submit(rollup, payload))
                await cluster.restart(replica)
                for payload in payloads[3:]:
                    await writer.wait_for_commit(await writer.submit(rollup, payload))
                final = (await writer.status())["committed_height"]
                while not seen or seen[-1].height < final + 2:
                    await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
    assert reconnects, "the restart should have cut the stream"
    assert [p.height for p in seen] == list(range(start, start + len(seen))), "gap or duplicate"
    delivered = [tx for p in seen for tx in p.transactions]
    assert delivered == payloads, "every transaction exactly once, in order"
    # a replica was down for a while: the others entered rounds through timeout certificates
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{cluster.api(0)}/metrics")).text
    samples = [s for f in text_string_to_metric_families(text) if f.name == "ordo_rounds_entered"
               for s in f.samples if s.name == "ordo_rounds_entered_total"]
    assert any(s.labels["via"] == "tc" and s.value > 0 for s in samples), samples
