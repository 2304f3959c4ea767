"""Links into the Temporal Web UI: a namespace's workflow list, and that list narrowed to the
transfers in one business status.

The list's own status column says how the workflow ended, and every transfer's workflow ends
COMPLETED, refused and compensated ones too; the business status is the `TransferStatus` search
attribute, which the UI filters on with a visibility query in the `query` parameter."""

from __future__ import annotations

from urllib.parse import quote

from workflows.models import TransferStatus
from workflows.search_attributes import TRANSFER_STATUS


def workflows_page(ui_url: str, namespace: str) -> str:
    return f"{ui_url.rstrip('/')}/namespaces/{namespace}/workflows"


def status_list_link(ui_url: str, namespace: str, status: TransferStatus) -> str:
    """The UI's workflow list showing only the transfers whose status is `status`."""
    query = quote(f'{TRANSFER_STATUS.name}="{status.value}"', safe="")
    return f"{workflows_page(ui_url, namespace)}?query={query}"
