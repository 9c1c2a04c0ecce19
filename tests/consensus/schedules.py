"""Hypothesis strategies for fault schedules (shared by property and teeth tests)."""

from __future__ import annotations

from hypothesis import strategies as st

from consensus.simulation.network import LinkConfig
from consensus.simulation.scenario import STRATEGIES, Fault, Schedule

GST = 4.0

@st.composite
def links(draw: st.DrawFn) -> LinkConfig:
    lo = draw(st.floats(0.0, 0.1))
    return LinkConfig(
        min_delay=lo,
        max_delay=lo + draw(st.floats(0.005, 0.5)),
        drop=draw(st.sampled_from([0.0, 0.0, 0.1, 0.3, 0.6])),
        duplicate=draw(st.sampled_from([0.0, 0.1, 0.4])),
    )

@st.composite
def faults(draw: st.DrawFn, n: int, byzantine: set[int]) -> tuple[Fault, ...]:
    out = []
    honest = [i for i in range(n) if i not in byzantine]
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.floats(0.0, GST - 0.01))
        kind = draw(st.sampled_from(["partition", "heal", "crash", "restart", "links"]))
        if kind == "partition":
            assignment = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
            groups = tuple(
                tuple(i for i in range(n) if assignment[i] == g) for g in range(3)
            )
            out.append(Fault(at, kind, groups=tuple(g for g in groups if g)))
        elif kind in ("crash", "restart"):
            out.append(Fault(at, kind, instance=draw(st.sampled_from(honest))))
        elif kind == "links":
            out.append(Fault(at, kind, link=draw(links())))
        else:
            out.append(Fault(at, kind))
    return tuple(sorted(out, key=lambda f: f.at))

@st.composite
def schedules(
    draw: st.DrawFn,
    n: int,
    strategies: tuple[str, ...] = tuple(STRATEGIES),
    *,
    min_byzantine: int = 0,
    leader_spans: tuple[int, ...] = (1, 1, 2),
) -> Schedule:
    """A seed, up to f Byzantine replicas with strategies, timed faults before GST, and a
    round-robin leader schedule whose leaders keep 1 or 2 consecutive rounds (the lying leaders
    in consensus/simulation/lying.py need two), and catch-up on or off."""
    f = (n - 1) // 3
    byz_ids = draw(st.lists(st.integers(0, n - 1), unique=True, min_size=min_byzantine, max_size=f))
    byzantine = {i: draw(st.sampled_from(strategies)) for i in byz_ids}
    return Schedule(
        n=n,
        seed=draw(st.integers(0, 2**32)),
        byzantine=byzantine,
        faults=draw(faults(n, set(byz_ids))),
        gst=GST,
        window=8.0,
        leader_span=draw(st.sampled_from(leader_spans)),
        sync_interval=draw(st.sampled_from([None, 0.3])),
    )
