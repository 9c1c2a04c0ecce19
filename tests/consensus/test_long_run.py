"""Long soaks (slow profile): 10,000+ committed rounds with faults along the way, and the
simulator's throughput in rounds/s with real Ed25519 signatures (verification cache shared across
the simulated replicas, so each distinct signature is verified once)."""

from __future__ import annotations

import time

import pytest

from consensus.simulation import LinkConfig, SimConfig, Simulator, check_safety


def soak(n: int, target: int, seed: int, faults: bool) -> tuple[Simulator, float]:
    sim = Simulator(SimConfig(n=n, seed=seed, link=LinkConfig(0.005, 0.02), tx_interval=0.01))
    if faults:
        for k in range(1, 400):
            victim = k % n
            sim.at(k * 7.0, lambda s, v=victim: s.crash(v))
            sim.at(k * 7.0 + 1.0, lambda s, v=victim: s.restart(v))
            if k % 5 == 0:
                sim.at(k * 7.0 + 3.0, lambda s: s.partition([list(range(n // 2)), list(range(n // 2, n))]))
                sim.at(k * 7.0 + 3.5, lambda s: s.heal())
    started = time.perf_counter()
    sim.run(stop=lambda s: s.min_honest_height() >= target, until=1e9)
    return sim, time.perf_counter() - started


@pytest.mark.slow
@pytest.mark.parametrize("n,target", [(4, 10_000), (7, 3_000)])
def test_soak_with_crashes_and_partitions(n: int, target: int) -> None:
    sim, elapsed = soak(n, target, seed=2026, faults=True)
    assert check_safety(sim) == []
    height = sim.min_honest_height()
    assert height >= target
    rounds = max(node.max_round for node in sim.honest)
    print(f"\nsoak n={n}: {height} blocks committed on every replica, {rounds} rounds, "
          f"{sim.now:.0f} virtual s, {elapsed:.1f} s wall, {rounds / elapsed:.0f} rounds/s")


@pytest.mark.slow
@pytest.mark.parametrize("n", [4, 7])
def test_simulator_rounds_per_second(n: int) -> None:
    sim, elapsed = soak(n, 2_000, seed=1, faults=False)
    assert check_safety(sim) == []
    rounds = max(node.max_round for node in sim.honest)
    print(f"\nsimulator n={n}: {rounds} rounds in {elapsed:.2f} s = {rounds / elapsed:.0f} rounds/s "
          f"(Ed25519 sign+verify included)")
