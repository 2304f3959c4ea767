"""Tracing transfers in the Temporal Web UI, in a real browser: the dev stack runs a completed and
a compensated transfer through the CLI; headless Chromium (Debian's, driven by Playwright) finds
each by its TransferStatus search attribute and shows its summary and its steps.

Screenshots go to artifacts/webui/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from shards.router import shard_index
from tests.support.cli_runs import run_cli
from tests.support.dev_stack import dev_stack
from transfers.settings import StackInfo
from transfers.ui_links import status_list_link, workflows_page
from workflows.models import TransferStatus

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[2] / "artifacts" / "webui"
SHARDS = 2
# Chromium as this machine runs it: no sandbox as root, no GPU, and no calls home (the network
# is closed, and a refused connection at every start only slows it down).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT_MS = 20_000  # the UI is slow to draw on a busy 2-core machine
expect.set_options(timeout=UI_TIMEOUT_MS)  # expect() has its own default of 5 s

pytestmark = [
    pytest.mark.webui,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing and `make browser` could not install it (it needs root and "
        "apt-get: `apt-get install chromium`)",
    ),
]


def _on_shard(prefix: str, shard: int) -> str:
    return next(f"{prefix}-{n}" for n in count() if shard_index(f"{prefix}-{n}", SHARDS) == shard)


SOURCE, TARGET, CLOSED = _on_shard("alice", 0), _on_shard("bob", 1), _on_shard("closed", 1)


@dataclass(frozen=True)
class Transfer:
    """A transfer the stack runs, and what the Web UI should show of it."""

    transfer_id: str
    target: str
    amount: str
    status: str
    # the steps, as the timeline labels them: local activities are labelled by name (their
    # summaries, with the amounts, are in their markers; the transfer's summary says the amount)
    steps: tuple[str, ...]

    @property
    def summary(self) -> str:
        return f"{self.amount} USD {SOURCE} -> {self.target}"

    @property
    def workflow_id(self) -> str:
        return f"transfer-{self.transfer_id}"


COMPLETED = Transfer(
    "t-completed",
    TARGET,
    "12.34",
    "COMPLETED",
    ("claim", "debit", "credit"),
)
COMPENSATED = Transfer(  # the target is closed: its credit is refused, the debit refunded
    "t-compensated",
    CLOSED,
    "5.00",
    "COMPENSATED",
    ("claim", "debit", "credit", "fence_credit", "refund"),
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """A dev stack with SOURCE funded and both transfers run through the CLI."""
    data_dir = tmp_path_factory.mktemp("webui") / "data"
    with dev_stack(data_dir, SHARDS) as info:
        cli = _cli(data_dir)
        cli(
            *(
                ("accounts", "open", account, "--currency", "USD")
                for account in (SOURCE, TARGET, CLOSED)
            )
        )
        cli(("accounts", "deposit", SOURCE, "100.00"), ("accounts", "close", CLOSED))
        transfers = (COMPLETED, COMPENSATED)
        outcomes = cli(*(_submit(transfer) for transfer in transfers))
        assert [outcome["status"] for outcome in outcomes] == [t.status for t in transfers]
        yield info


def _id(transfer: Transfer) -> str:
    return transfer.transfer_id


def _submit(transfer: Transfer) -> tuple[str, ...]:
    route = ("--from", SOURCE, "--to", transfer.target, "--amount", transfer.amount)
    return ("submit", "--id", transfer.transfer_id, *route)


def _cli(data_dir: Path) -> Callable[..., list[Any]]:
    """Runs `transfers ARGS --stack DATA_DIR --json` side by side, one subprocess per ARGS."""
    environment = {"PATH": "/usr/bin:/bin"}  # nothing from this shell: the stack file decides

    def run(*runs: tuple[str, ...]) -> list[Any]:
        def one(args: tuple[str, ...]) -> Any:
            command = (*args, "--stack", str(data_dir), "--json")
            return run_cli(command, environment, data_dir.parent).json()

        with ThreadPoolExecutor() as pool:
            return list(pool.map(one, runs))

    return run


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser: Browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        context = await browser.new_context(viewport={"width": 1600, "height": 1000})
        context.set_default_timeout(UI_TIMEOUT_MS)
        yield await context.new_page()
        await browser.close()


async def _list(page: Page, stack: StackInfo, status: str) -> None:
    """The workflow list filtered by the UI's query on our search attribute: the link that
    `transfers dev` prints for the status."""
    assert stack.ui_url is not None
    link = status_list_link(stack.ui_url, stack.namespace, TransferStatus(status))
    await page.goto(link)


@pytest.mark.parametrize(
    ("transfer", "other"), [(COMPLETED, COMPENSATED), (COMPENSATED, COMPLETED)], ids=_id
)
async def test_the_status_link_lists_exactly_the_transfers_in_that_status(
    stack: StackInfo, page: Page, transfer: Transfer, other: Transfer
) -> None:
    await _list(page, stack, transfer.status)

    await expect(page.get_by_role("link", name=transfer.workflow_id)).to_be_visible()
    # every transfer's workflow id starts so: the one row is this transfer's, the other is not
    await expect(page.get_by_role("link", name=re.compile("^transfer-"))).to_have_count(1)
    await expect(page.get_by_role("link", name=other.workflow_id)).to_have_count(0)
    await page.screenshot(path=ARTIFACTS / f"list-{transfer.status.lower()}.png")


@pytest.mark.parametrize("transfer", [COMPLETED, COMPENSATED], ids=_id)
async def test_each_transfer_shows_its_summary_and_steps(
    stack: StackInfo, page: Page, transfer: Transfer
) -> None:
    await _list(page, stack, transfer.status)
    await page.get_by_role("link", name=transfer.workflow_id).click()

    await page.wait_for_url("**/timeline*")
    for step in transfer.steps:  # each step's marker is labelled with its name
        await expect(page.get_by_text(step, exact=True).first).to_be_visible()
    await page.screenshot(path=ARTIFACTS / f"{transfer.transfer_id}-steps.png", full_page=True)
    await page.get_by_test_id("user-metadata-tab").click()
    # the UI renders the summary (markdown) in a sandboxed frame of its own
    summary_frame = page.frame_locator("iframe").first
    await expect(summary_frame.get_by_text(transfer.summary, exact=True)).to_be_visible()
    await page.screenshot(path=ARTIFACTS / f"{transfer.transfer_id}-summary.png")


async def test_a_saved_view_with_the_status_column_shows_the_business_status(
    stack: StackInfo, page: Page
) -> None:
    """What the README tells a user to do: open a status link, add the TransferStatus column,
    save the list as a view; opened again from the whole list, the view shows that transfer
    alone, with its business status beside the workflow's COMPLETED."""
    await _list(page, stack, COMPENSATED.status)
    await page.get_by_test_id("workflows-summary-table-configuration-button").click()
    await page.get_by_role("button", name="Add TransferStatus column").click()
    await page.get_by_test_id("drawer-close-button").click()
    await page.get_by_test_id("create-view-button").click()
    await page.get_by_test_id("workflow-save-view-modal-input").fill("Compensated transfers")
    await page.get_by_role("button", name="Save", exact=True).click()

    assert stack.ui_url is not None
    await page.goto(workflows_page(stack.ui_url, stack.namespace))
    await expect(page.get_by_role("link", name=re.compile("^transfer-"))).to_have_count(2)
    await page.get_by_test_id("saved-views-button").click()
    await page.get_by_text("Compensated transfers").first.click()

    await expect(page.get_by_role("columnheader", name="TransferStatus")).to_be_visible()
    rows = page.locator("tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.get_by_role("link", name=COMPENSATED.workflow_id)).to_be_visible()
    status_cell = rows.get_by_role("cell", name="COMPENSATED", exact=True)
    await expect(status_cell).to_be_visible()
    await status_cell.scroll_into_view_if_needed()  # the new column is last, beyond the right
    await page.screenshot(path=ARTIFACTS / "saved-view-compensated.png")
