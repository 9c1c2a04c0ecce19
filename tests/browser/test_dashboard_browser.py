"""The operators' dashboard (GET /dashboard) in a real headless Chromium against a live 4-replica
cluster under demo load: it loads without console errors and goes live, the heights it shows
advance, a killed (kill -9) leader turns red and another leader is shown, and a double-voting
replica's evidence appears. A screenshot of each state goes to the test's tmp dir; the evidence
state is the README's (docs/dashboard.png: regenerate with
``ORDO_SCREENSHOT_DIR=docs python -m pytest tests/browser``). They run in the default suite
(~20 s on 2 cores) and skip, saying why, where Playwright or Debian's chromium is missing.

The tests share one cluster and run in file order: the leader test restarts the replica it
killed, the evidence test then restarts replica 3 as a double voter."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from . import dashboard_page as dp
from .harness import LiveCluster, Tab, save_screenshot

WATCHED = 0  # the replica whose page the tests watch
LIVE_TIMEOUT = 20.0  # page load to "live", and for the first snapshot's heights
ADVANCE_TIMEOUT = 15.0  # the shown height must grow by ADVANCE within this (it grows ~10/s under load)
ADVANCE = 5
DOWN_TIMEOUT = 15.0  # a killed replica shown down: the contract says ~2 x base timeout (0.5 s here) after
EVIDENCE_TIMEOUT = 45.0  # from the double voter's restart to evidence on the page


def open_dashboard(tab: Tab, live: LiveCluster, replica: int = WATCHED) -> None:
    response = tab.page.goto(live.url(replica))
    assert response is not None and response.ok, response and response.status
    tab.page.wait_for_function("() => /live/i.test(document.querySelector('#connection')?.textContent ?? '')",
                               timeout=LIVE_TIMEOUT * 1000)
    dp.wait_number_at_least(tab.page, "#height", 1, LIVE_TIMEOUT)


def test_the_page_loads_goes_live_and_shows_the_cluster_moving(tab: Tab, live: LiveCluster, shots: Path) -> None:
    open_dashboard(tab, live)
    page = tab.page
    entries = dp.wait_committee(page, "(es) => es.length === 4 && es.every(e => e.state === 'up')", None,
                                LIVE_TIMEOUT)
    assert sorted(entries) == [0, 1, 2, 3]
    before = {r: e.text for r, e in entries.items()}
    low, high = dp.wait_advancing(page, "#height", ADVANCE, ADVANCE_TIMEOUT)
    assert high >= low + ADVANCE
    dp.wait_advancing(page, "#round", ADVANCE, ADVANCE_TIMEOUT)
    # every replica's entry moves too (its round and committed height are in its text)
    dp.wait_committee(page, "(es, old) => es.every(e => e.text !== old[e.replica])", before, ADVANCE_TIMEOUT)
    dp.wait_committee(page, "(es) => es.filter(e => e.leader).length === 1", None, ADVANCE_TIMEOUT)
    # the timeline lists committed blocks, newest near the height shown
    page.wait_for_function("(h) => document.querySelectorAll('#timeline [data-height]').length > 0 && "
                           "Math.max(...Array.from(document.querySelectorAll('#timeline [data-height]'),"
                           " e => parseInt(e.dataset.height, 10))) >= h", arg=low, timeout=ADVANCE_TIMEOUT * 1000)
    # the chart is drawn: an SVG (or canvas) whose paths have points
    page.wait_for_function("() => { const c = document.querySelector('#throughput'); return c !== null && "
                           "(c.tagName === 'CANVAS' || Array.from(c.querySelectorAll('path, polyline'))"
                           ".some(p => (p.getAttribute('d') || p.getAttribute('points') || '').length > 20)); }",
                           timeout=ADVANCE_TIMEOUT * 1000)
    page.wait_for_selector("#rollups [data-rollup]", timeout=ADVANCE_TIMEOUT * 1000)
    assert page.locator("#faults").count() == 1
    save_screenshot(page, shots, "live")
    assert tab.errors == []


def test_the_height_check_fails_on_a_page_whose_stream_is_cut(tab: Tab, live: LiveCluster) -> None:
    """Teeth: the same page with its live updates cut after the first event (the snapshot) shows
    the cluster's height once and then never moves: the height check above must fail on it, while
    the cluster itself went on committing."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    tab.page.add_init_script(dp.CUT_STREAM_JS)
    tab.page.route("**/v1/dashboard/snapshot*", lambda route: route.abort())  # no polled refresh either
    tab.page.goto(live.url(WATCHED))
    dp.wait_number_at_least(tab.page, "#height", 1, LIVE_TIMEOUT)
    frozen = dp.number(tab.page, "#height")
    with pytest.raises(PlaywrightTimeout):
        dp.wait_advancing(tab.page, "#height", ADVANCE, 5.0)
    status = live.status(WATCHED)
    assert status is not None and status["committed_height"] >= frozen + ADVANCE  # the cluster did move on
    assert dp.number(tab.page, "#height") == frozen


def test_a_killed_leader_turns_red_and_a_new_leader_is_shown(tab: Tab, live: LiveCluster, shots: Path) -> None:
    open_dashboard(tab, live)
    page = tab.page
    # the leader the page shows, other than the replica serving it (whose page would die with it)
    entries = dp.wait_committee(page, "(es, w) => es.length === 4 && es.every(e => e.state === 'up') && "
                                      "es.some(e => e.leader && e.replica !== w)", WATCHED, LIVE_TIMEOUT)
    victim = dp.leader_of(entries)
    assert victim is not None and victim != WATCHED
    live.call(live.harness.kill, victim)  # kill -9
    round_at_kill = dp.number(page, "#round")
    down = dp.wait_committee(page, "(es, v) => es.some(e => e.replica === v && e.state === 'down')", victim,
                             DOWN_TIMEOUT)
    assert down[WATCHED].state == "up"
    # a new leader: in a later round another replica is shown leading, the victim still red
    page.wait_for_function(
        f"([v, r]) => ({dp.NUMBER_JS})('#round') > r && ({dp.COMMITTEE_JS})().some(e => e.leader && e.replica !== v) "
        f"&& ({dp.COMMITTEE_JS})().some(e => e.replica === v && e.state === 'down' && !e.leader)",
        arg=[victim, round_at_kill], timeout=ADVANCE_TIMEOUT * 1000)
    dp.wait_advancing(page, "#height", ADVANCE, ADVANCE_TIMEOUT * 2)  # commits go on without it
    assert dp.committee(page)[victim].state == "down"
    save_screenshot(page, shots, "leader-down")
    # back: restarted, it is shown up again
    live.call(live.harness.start, victim)
    live.call(live.harness.wait_ready, [victim])
    dp.wait_committee(page, "(es) => es.every(e => e.state === 'up')", None, LIVE_TIMEOUT * 2)
    save_screenshot(page, shots, "leader-back")
    assert tab.errors == []


def test_a_double_voters_evidence_appears(tab: Tab, live: LiveCluster, shots: Path) -> None:
    open_dashboard(tab, live)
    page = tab.page
    assert page.locator("#evidence [data-evidence]").count() == 0
    harness = live.harness
    live.call(harness.stop, 3)
    live.call(harness.start, 3, "--byzantine", "double-vote")
    live.call(harness.wait_ready, [3])
    page.wait_for_selector("#evidence [data-evidence]", timeout=EVIDENCE_TIMEOUT * 1000)
    record = page.locator("#evidence [data-evidence]").first
    text = record.inner_text()
    assert record.get_attribute("data-offender") == "3" and "replica 3" in text, text
    hashes = set(re.findall(r"\b[0-9a-f]{12,64}\b", text))
    assert len(hashes) >= 2, f"the two conflicting messages' hashes: {text!r}"
    # gossiped and committed into the log: the entry says so
    page.wait_for_selector("#evidence [data-evidence][data-committed='true']", timeout=EVIDENCE_TIMEOUT * 1000)
    # the proof link opens JSON that `ordo evidence verify` accepts (checked against the committee)
    link = record.locator("a[href]").first
    href = link.get_attribute("href")
    assert href, record.inner_html()
    body = httpx.get(httpx.URL(live.url(WATCHED)).join(href), timeout=10).json()
    evidence = Path(shots) / "evidence.json"
    evidence.write_text(json.dumps(body))
    verified = subprocess.run([sys.executable, "-m", "sequencing.cli", "evidence", "verify", "--config",
                               str(live.config_path), str(evidence)], capture_output=True, text=True, timeout=60,
                              check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # the committee stays live and whole around it
    dp.wait_advancing(page, "#height", ADVANCE, ADVANCE_TIMEOUT)
    dp.wait_committee(page, "(es) => es.every(e => e.state === 'up')", None, LIVE_TIMEOUT)
    save_screenshot(page, shots, "evidence", readme=True)
    assert tab.errors == []
