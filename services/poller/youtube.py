"""A small client for the two YouTube Data API v3 calls the poller needs.

- `YouTubeClient.playlist_video_ids`: ``playlistItems.list`` paged with ``pageToken`` and
  ``maxResults=50`` (50 ids a unit), ``fields`` trimmed to the video ids and the next token.
- `YouTubeClient.videos`: ``videos.list`` with up to 50 ids and ``part=snippet,statistics``
  for one unit, ``fields`` trimmed to what a snapshot carries.

Errors become typed exceptions the poller branches on (`QuotaExceeded`, `KeyRejected`,
`PlaylistUnavailable`, `TransientError` after the retries are spent). Transient failures
(rate limits, 5xx, timeouts) are retried here with `Backoff`. Every request sent is reported to
``on_call(endpoint, outcome, units)`` so the caller can count quota: YouTube charges failed
requests too.

The API key travels in the ``key`` query parameter, as the API documents. It must never reach a
log or an exception: error texts are built without the URL and passed through
`redact_query_secrets`, and httpx's own request log lines are redacted by a logging filter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from tubewatch.backoff import Backoff
from tubewatch.secrets import redact_query_secrets

log = logging.getLogger(__name__)

MAX_IDS = 50
MAX_PLAYLIST_PAGES = 200  # YouTube playlists hold about 5,000 items: 100 pages
PLAYLIST_FIELDS = "nextPageToken,items(contentDetails/videoId)"
VIDEO_FIELDS = (
    "items(id,snippet(title,channelTitle,thumbnails(default/url,medium/url,high/url)),statistics)"
)

QUOTA_REASONS = {"quotaExceeded", "dailyLimitExceeded"}
RETRY_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "backendError"}
KEY_REASONS = {"keyInvalid", "keyExpired", "accessNotConfigured", "forbidden", "ipRefererBlocked"}
PLAYLIST_REASONS = {"playlistNotFound", "playlistItemsNotAccessible"}


class YouTubeError(Exception):
    """A failed YouTube call. The text never carries the API key."""

    outcome = "error"

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(redact_query_secrets(message))
        self.status = status
        self.reason = reason


class TransientError(YouTubeError):
    """Rate limit, 5xx or network trouble that outlived the retries: try again next cycle."""

    outcome = "transient"


class QuotaExceeded(YouTubeError):
    """The day's quota is spent: nothing works until midnight Pacific time."""

    outcome = "quota_exceeded"


class KeyRejected(YouTubeError):
    """The key is missing, invalid or the API is not enabled for it: an operator must act."""

    outcome = "key_rejected"


class PlaylistUnavailable(YouTubeError):
    """The playlist does not exist (or is private): only the watches on it are affected."""

    outcome = "playlist_unavailable"


@dataclass(frozen=True)
class VideoStats:
    """One video as ``videos.list`` returns it; ``None`` counts are hidden or off, not zero."""

    video_id: str
    title: str
    channel_title: str | None
    thumbnail: str | None
    likes: int | None
    comments: int | None
    views: int | None
    favorites: int | None

    @classmethod
    def from_resource(cls, item: dict) -> VideoStats:
        snippet = item.get("snippet", {})
        stats = item.get("statistics", {})
        thumbs = snippet.get("thumbnails", {})
        thumbnail = next(
            (thumbs[size]["url"] for size in ("high", "medium", "default") if size in thumbs),
            None,
        )

        def count(name: str) -> int | None:
            value = stats.get(name)
            return int(value) if value is not None else None

        return cls(
            video_id=item["id"],
            title=snippet.get("title", ""),
            channel_title=snippet.get("channelTitle"),
            thumbnail=thumbnail,
            likes=count("likeCount"),
            comments=count("commentCount"),
            views=count("viewCount"),
            favorites=count("favoriteCount"),
        )


class _RedactSecrets(logging.Filter):
    """Rewrites a record's text with query secrets masked (httpx logs each request URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_query_secrets(record.getMessage())
        record.args = None
        return True


def guard_http_logs() -> None:
    """Installs the redacting filter on httpx's loggers (once, whatever the log level)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactSecrets) for f in logger.filters):
            logger.addFilter(_RedactSecrets())


def _classify(endpoint: str, response: httpx.Response) -> YouTubeError:
    """The typed error for a non-2xx answer, from its status and ``errors[].reason``."""
    status = response.status_code
    try:
        error = response.json()["error"]
        reasons = [e.get("reason") for e in error.get("errors", [])]
        details = [d.get("reason") for d in error.get("details", [])]
        message = str(error.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        reasons, details, message = [], [], response.text[:200]
    reason = reasons[0] if reasons else None
    text = f"{endpoint}: HTTP {status} {reason or ''}: {message}".replace("  ", " ")
    found = set(reasons)
    if found & QUOTA_REASONS:
        return QuotaExceeded(text, status=status, reason=reason)
    if found & RETRY_REASONS or status == 429 or status >= 500:
        return TransientError(text, status=status, reason=reason)
    if (
        found & KEY_REASONS
        or "API_KEY_INVALID" in details
        or (status == 400 and "API key" in message)
    ):
        return KeyRejected(text, status=status, reason=reason)
    if found & PLAYLIST_REASONS:
        return PlaylistUnavailable(text, status=status, reason=reason)
    return YouTubeError(text, status=status, reason=reason)


def _no_count(endpoint: str, outcome: str, units: int) -> None:
    return None


class YouTubeClient:
    """``playlistItems.list`` and ``videos.list`` over one pooled httpx client."""

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr | str | None,
        *,
        timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        on_call: Callable[[str, str, int], None] = _no_count,
        transport: httpx.BaseTransport | None = None,
    ):
        guard_http_logs()
        if isinstance(api_key, SecretStr):
            api_key = api_key.get_secret_value()
        self._key = api_key or None
        self.backoff = backoff or Backoff()
        self.on_call = on_call
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/", timeout=timeout_s, transport=transport
        )

    def __repr__(self) -> str:  # never show the key
        return f"YouTubeClient({self._http.base_url})"

    def close(self) -> None:
        self._http.close()

    def _error(self, cls: type[YouTubeError], text: str, **kw: object) -> YouTubeError:
        if self._key:
            text = text.replace(self._key, "***")
        return cls(text, **kw)  # type: ignore[arg-type]

    def _get(self, endpoint: str, params: dict[str, str]) -> dict:
        """One logical call: retried with backoff while the failure is transient."""
        if not self._key:
            raise KeyRejected("no YouTube API key configured (set TUBEWATCH_YOUTUBE_API_KEY)")
        for retry in range(self.backoff.attempts):
            error: YouTubeError
            units = 1
            try:
                response = self._http.get(endpoint, params={**params, "key": self._key})
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                units = 0  # the request never left this machine: YouTube charged nothing
                error = self._error(
                    TransientError, f"{endpoint}: cannot connect: {exc or type(exc).__name__}"
                )
            except httpx.TimeoutException:  # it may have reached YouTube: counted
                error = self._error(TransientError, f"{endpoint}: timed out")
            except httpx.TransportError as exc:
                error = self._error(TransientError, f"{endpoint}: {type(exc).__name__}: {exc}")
            else:
                if response.is_success:
                    self.on_call(endpoint, "ok", 1)
                    try:
                        return response.json()
                    except ValueError:
                        raise self._error(YouTubeError, f"{endpoint}: answer is not JSON") from None
                error = _classify(endpoint, response)
                if self._key in str(error):  # defensive: a server echoing the key back
                    error = self._error(
                        type(error), str(error), status=error.status, reason=error.reason
                    )
            self.on_call(endpoint, error.outcome, units)
            if not isinstance(error, TransientError) or retry + 1 >= self.backoff.attempts:
                raise error
            log.warning("%s; retry %d of %d", error, retry + 1, self.backoff.attempts - 1)
            self.backoff.wait(retry)
        raise AssertionError("unreachable")  # pragma: no cover

    def playlist_video_ids(self, playlist_id: str) -> list[str]:
        """Every video id in the playlist, in playlist order, each once (1 unit a page of 50)."""
        ids: dict[str, None] = {}
        token: str | None = None
        for _ in range(MAX_PLAYLIST_PAGES):
            params = {
                "part": "contentDetails",
                "playlistId": playlist_id,
                "maxResults": str(MAX_IDS),
                "fields": PLAYLIST_FIELDS,
            }
            if token:
                params["pageToken"] = token
            page = self._get("playlistItems", params)
            for item in page.get("items", []):
                video_id = item.get("contentDetails", {}).get("videoId")
                if video_id:
                    ids.setdefault(video_id, None)
            token = page.get("nextPageToken")
            if not token:
                break
        return list(ids)

    def videos(self, video_ids: Iterable[str]) -> dict[str, VideoStats]:
        """Statistics for up to 50 ids in one unit. Deleted and private ids are left out."""
        ids = list(video_ids)
        if not ids:
            return {}
        if len(ids) > MAX_IDS:
            raise ValueError(f"videos.list takes at most {MAX_IDS} ids, got {len(ids)}")
        params = {"part": "snippet,statistics", "id": ",".join(ids), "fields": VIDEO_FIELDS}
        page = self._get("videos", params)
        found = (VideoStats.from_resource(item) for item in page.get("items", []))
        return {video.video_id: video for video in found}
