"""What the browser tests read off the dashboard page, through its stable DOM hooks (the page
contract: #committee [data-replica], #height, #round, #timeline, #throughput, #rollups,
#evidence [data-evidence], #faults, #connection). Waits poll inside the browser
(``page.wait_for_function``) up to a deadline; none sleeps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# the integer a hook's text shows (-1 when it shows none yet)
NUMBER_JS = """(selector) => {
  const el = document.querySelector(selector);
  const digits = el ? el.textContent.replace(/[^0-9]/g, '') : '';
  return digits === '' ? -1 : parseInt(digits, 10);
}"""

COMMITTEE_JS = """() => Array.from(document.querySelectorAll('#committee [data-replica]')).map(e => ({
  replica: parseInt(e.dataset.replica, 10), state: e.dataset.state || null,
  leader: e.dataset.leader === 'true', text: e.textContent.replace(/\\s+/g, ' ').trim()}))"""

# A page whose live updates are cut: every EventSource the page opens delivers only the first
# event that arrives (the snapshot) and drops the rest, so the page loads but never moves on.
CUT_STREAM_JS = """(() => {
  const Real = window.EventSource;
  let first = null;
  const pass = (ev) => { if (first === null) first = ev; return ev === first; };
  class Cut extends Real {
    addEventListener(type, fn, options) {
      if (type === 'open' || type === 'error') return super.addEventListener(type, fn, options);
      const gated = (ev) => { if (pass(ev)) return typeof fn === 'function' ? fn.call(this, ev) : fn.handleEvent(ev); };
      return super.addEventListener(type, gated, options);
    }
    set onmessage(fn) { this.addEventListener('message', fn); }
  }
  window.EventSource = Cut;
})();"""


@dataclass(frozen=True)
class Entry:
    replica: int
    state: str | None
    leader: bool
    text: str


def number(page: Any, selector: str) -> int:
    value: int = page.evaluate(NUMBER_JS, selector)
    return value


def committee(page: Any) -> dict[int, Entry]:
    return {e["replica"]: Entry(**e) for e in page.evaluate(COMMITTEE_JS)}


def wait_number_at_least(page: Any, selector: str, value: int, timeout: float) -> None:
    """Until ``selector`` shows an integer >= ``value``; a playwright TimeoutError after ``timeout`` s."""
    page.wait_for_function(f"([s, v]) => ({NUMBER_JS})(s) >= v", arg=[selector, value], timeout=timeout * 1000)


def wait_advancing(page: Any, selector: str, by: int, timeout: float) -> tuple[int, int]:
    """Until ``selector``'s integer has grown by ``by`` from what it shows now: (before, after)."""
    before = number(page, selector)
    assert before >= 0, f"{selector} shows no number: {page.inner_text(selector)!r}"
    wait_number_at_least(page, selector, before + by, timeout)
    return before, number(page, selector)


def wait_committee(page: Any, predicate_js: str, arg: Any, timeout: float) -> dict[int, Entry]:
    """Until ``predicate_js(entries, arg)`` holds over the committee's entries (as COMMITTEE_JS
    gives them); then those entries."""
    page.wait_for_function(f"(arg) => ({predicate_js})(({COMMITTEE_JS})(), arg)", arg=arg, timeout=timeout * 1000)
    return committee(page)


def leader_of(entries: dict[int, Entry]) -> int | None:
    leaders = [r for r, e in entries.items() if e.leader]
    assert len(leaders) <= 1, f"more than one leader shown: {entries}"
    return leaders[0] if leaders else None
