"""Downloads a file someone uploaded to Slack, with the bot token, for indexing."""

from __future__ import annotations

import urllib.request
from typing import Any

from slack_sdk import WebClient

from index.errors import CitebotError

MAX_UPLOAD_BYTES = 25 * 1024 * 1024


class UploadTooLarge(CitebotError):
    """The uploaded file is larger than MAX_UPLOAD_BYTES."""


def download(client: WebClient, file: dict[str, Any], limit: int = MAX_UPLOAD_BYTES) -> bytes:
    """The bytes of a Slack file object (as in a `file_share` message's `files`)."""
    url = file.get("url_private_download") or file.get("url_private")
    if not url:  # some events carry only the id ("file_access": "check_file_info")
        file = client.files_info(file=file["id"])["file"]
        url = file.get("url_private_download") or file["url_private"]
    if not url.startswith(("https://", "http://")):
        raise OSError(f"not a web address: {url}")
    request = urllib.request.Request(url)
    # Unredirected: the token goes to Slack's file URL only, never to where it redirects.
    request.add_unredirected_header("Authorization", f"Bearer {client.token}")
    with urllib.request.urlopen(request, timeout=60) as response:
        data = response.read(limit + 1)
    if len(data) > limit:
        raise UploadTooLarge(file.get("name") or file["id"])
    return data
