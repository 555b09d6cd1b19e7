"""Client of the health-report API: our proposal, not in RE-ZIP's public API (as the offline pools
API is; the stand-in backend implements both). README.md, "Health reports", describes it in full:

``POST /drop-points/{drop_point_id}/health-reports`` with the kiosk's own token (``Pat``/``Bearer``
as for scans) and a JSON body ``{"reports": [REPORT, ...]}``: one or more of the kiosk's status
documents (``KioskSnapshot.to_json`` plus ``sent_at`` and ``dropped_reports``), oldest first, at most
``MAX_BATCH`` of them and 256 KiB in all. Answers: ``200 {"accepted": N}``; ``400 {"message"}`` for a
body that is not such a list (the kiosk drops that batch: sending it again cannot help); ``401`` an
unknown token, ``403`` a token that may not act for the drop point, ``404`` an unknown drop point;
anything else (5xx, no answer) and the kiosk keeps the reports and sends them later.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

__all__ = ["HealthReportsClient", "ReportsRefused", "MAX_BATCH"]

#: Reports in one request: a kiosk that was away a day sends its backlog in a few requests.
MAX_BATCH = 20


class ReportsRefused(ValueError):
    """The backend read the reports and said no (4xx): sending the same ones again cannot help."""


class HealthReportsClient:
    def __init__(self, http: httpx.AsyncClient, drop_point_id: str) -> None:
        self._http = http
        self._path = f"/drop-points/{drop_point_id}/health-reports"

    async def send(self, reports: list[dict[str, Any]]) -> int:
        """Send a batch (at most ``MAX_BATCH``); returns how many the backend accepted.
        ``ReportsRefused`` on a 4xx answer, ``httpx.HTTPError`` when it should be tried later."""
        if not 0 < len(reports) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} reports, not {len(reports)}")
        response = await self._http.post(self._path, json={"reports": reports})
        if 400 <= response.status_code < 500:
            raise ReportsRefused(f"health reports refused ({response.status_code}): {_message(response)}")
        response.raise_for_status()
        try:
            accepted = json.loads(response.content).get("accepted")
        except (ValueError, AttributeError):
            accepted = None
        if not isinstance(accepted, int) or isinstance(accepted, bool):
            raise httpx.DecodingError("the health-report answer holds no 'accepted' count")
        return accepted


def _message(response: httpx.Response) -> str:
    try:
        message = json.loads(response.content).get("message")
    except (ValueError, AttributeError):
        message = None
    text = message if isinstance(message, str) else "no message"
    return "".join(ch if ch.isprintable() else " " for ch in text)[:200]
