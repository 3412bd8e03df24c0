"""A YouTube Data API v3 simulator for `playlistItems.list` and `videos.list`.

It answers as the real API does for those two calls: the same response shapes (kinds, etags,
``pageInfo``, ``nextPageToken``), ``maxResults`` ≤ 50 with ``pageToken`` paging, ``id`` lists
of up to 50, ``fields`` partial responses, statistics as strings with ``likeCount`` /
``commentCount`` absent when hidden or off, deleted and private videos left out of
``videos.list`` but listed in playlists, and the real error bodies. Every call costs one unit,
errors included, and an optional daily limit makes ``quotaExceeded`` real.

Control endpoints under ``/_sim`` set it up (playlists, video counts) and inject faults.
State lives in the app (``app.state.sim``); handlers are async, so the event loop serialises
them and no lock is needed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tubewatch.quota import quota_day
from tubewatch.youtube_sim.fields import FieldsError, apply_fields, parse_fields

MAX_RESULTS = 50
CHANNEL_ID = "UCsimulatedchannel0000000"

# reason -> (HTTP status, domain, message, google.rpc status) as the real API writes them.
ERRORS: dict[str, tuple[int, str, str, str]] = {
    "quotaExceeded": (
        403,
        "youtube.quota",
        "The request cannot be completed because you have exceeded your "
        '<a href="/youtube/v3/getting-started#quota">quota</a>.',
        "PERMISSION_DENIED",
    ),
    "rateLimitExceeded": (
        403,
        "usageLimits",
        "The request cannot be completed due to rate limiting.",
        "PERMISSION_DENIED",
    ),
    "backendError": (500, "global", "Backend Error", "INTERNAL"),
    "serviceUnavailable": (503, "global", "The service is currently unavailable.", "UNAVAILABLE"),
    "badRequest": (
        400,
        "global",
        "API key not valid. Please pass a valid API key.",
        "INVALID_ARGUMENT",
    ),
    "keyInvalid": (400, "usageLimits", "Bad Request", "INVALID_ARGUMENT"),
    "accessNotConfigured": (
        403,
        "usageLimits",
        "YouTube Data API v3 has not been used in project 0 before or it is disabled. Enable "
        "it by visiting the Google Cloud console then retry.",
        "PERMISSION_DENIED",
    ),
    "forbidden": (
        403,
        "global",
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
        "PERMISSION_DENIED",
    ),
    "playlistNotFound": (
        404,
        "youtube.playlistItem",
        "The playlist identified with the request's <code>playlistId</code> parameter cannot "
        "be found.",
        "NOT_FOUND",
    ),
}


def error_body(
    reason: str, message: str | None = None, location: str | None = None
) -> tuple[int, dict]:
    """The status and JSON body YouTube sends for ``reason``."""
    status, domain, default_message, rpc_status = ERRORS.get(
        reason, (400, "global", message or reason, "INVALID_ARGUMENT")
    )
    text = message or default_message
    item: dict[str, str] = {"message": text, "domain": domain, "reason": reason}
    if location:
        item.update(location=location, locationType="parameter")
    body: dict[str, Any] = {
        "error": {"code": status, "message": text, "errors": [item], "status": rpc_status}
    }
    if reason == "badRequest" and "API key" in text:
        body["error"]["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
            }
        ]
    return status, body


class ApiError(Exception):
    def __init__(self, reason: str, message: str | None = None, location: str | None = None):
        super().__init__(reason)
        self.reason, self.message, self.location = reason, message, location


@dataclass
class SimVideo:
    video_id: str
    title: str
    channel_title: str = "Simulated Channel"
    likes: int | None = 0
    comments: int | None = 0
    views: int = 0
    favorites: int = 0
    privacy: str = "public"  # public | private | deleted
    published_at: str = "2026-01-01T00:00:00Z"


@dataclass
class Fault:
    reason: str  # an ERRORS key, or "delay" (answer late: a client timeout)
    endpoint: str | None = None  # "videos" | "playlistItems" | None for both
    remaining: int = 1
    delay_s: float = 0.0


@dataclass
class SimState:
    playlists: dict[str, list[str]] = field(default_factory=dict)
    videos: dict[str, SimVideo] = field(default_factory=dict)
    valid_keys: set[str] | None = None  # None: any non-empty key is valid
    daily_limit: int | None = None
    day: str = ""
    units_used: int = 0
    units_by_endpoint: dict[str, int] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)

    def charge(self, endpoint: str) -> None:
        """One unit per call, whatever the outcome; the count restarts each Pacific day."""
        today = quota_day(datetime.now(UTC))
        if today != self.day:
            self.day, self.units_used, self.units_by_endpoint = today, 0, {}
        self.units_used += 1
        self.units_by_endpoint[endpoint] = self.units_by_endpoint.get(endpoint, 0) + 1

    def take_fault(self, endpoint: str) -> Fault | None:
        for fault in self.faults:
            if fault.endpoint in (None, endpoint) and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                return fault
        return None


def _etag(value: object) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(repr(value).encode()).digest()[:15]).decode()


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"PT:{offset}".encode()).decode().rstrip("=")


def _page_offset(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not text.startswith("PT:"):
            raise ValueError(text)
        return int(text[3:])
    except ValueError:
        raise ApiError(
            "invalidPageToken", "The request specifies an invalid page token.", "pageToken"
        ) from None


def _thumbnails(video_id: str) -> dict:
    sizes = {"default": (120, 90), "medium": (320, 180), "high": (480, 360)}
    return {
        name: {"url": f"https://i.ytimg.com/vi/{video_id}/{name}.jpg", "width": w, "height": h}
        for name, (w, h) in sizes.items()
    }


def _playlist_item(playlist_id: str, position: int, video: SimVideo | None, vid: str) -> dict:
    visible = video is not None and video.privacy == "public"
    if visible and video:
        title = video.title
    elif video is not None and video.privacy == "private":
        title = "Private video"
    else:
        title = "Deleted video"
    snippet: dict[str, Any] = {
        "publishedAt": "2026-01-02T00:00:00Z",
        "channelId": CHANNEL_ID,
        "title": title,
        "description": "" if not visible else f"About {title}",
        "thumbnails": _thumbnails(vid) if visible else {},
        "channelTitle": "Simulated Channel",
        "playlistId": playlist_id,
        "position": position,
        "resourceId": {"kind": "youtube#video", "videoId": vid},
    }
    content: dict[str, str] = {"videoId": vid}
    if visible and video:
        snippet["videoOwnerChannelTitle"] = video.channel_title
        snippet["videoOwnerChannelId"] = CHANNEL_ID
        content["videoPublishedAt"] = video.published_at
    return {
        "kind": "youtube#playlistItem",
        "etag": _etag((playlist_id, position, vid, title)),
        "id": _etag((playlist_id, vid)).rstrip("="),
        "snippet": snippet,
        "contentDetails": content,
        "status": {"privacyStatus": "public" if visible else "private"},
    }


def _video_resource(video: SimVideo) -> dict:
    statistics: dict[str, str] = {"viewCount": str(video.views)}
    if video.likes is not None:
        statistics["likeCount"] = str(video.likes)
    statistics["favoriteCount"] = str(video.favorites)
    if video.comments is not None:
        statistics["commentCount"] = str(video.comments)
    resource = {
        "kind": "youtube#video",
        "id": video.video_id,
        "snippet": {
            "publishedAt": video.published_at,
            "channelId": CHANNEL_ID,
            "title": video.title,
            "description": f"About {video.title}",
            "thumbnails": _thumbnails(video.video_id),
            "channelTitle": video.channel_title,
            "categoryId": "22",
            "liveBroadcastContent": "none",
        },
        "statistics": statistics,
    }
    resource["etag"] = _etag(resource)
    return resource


def _parts(params: dict[str, str], allowed: set[str]) -> set[str]:
    raw = params.get("part")
    if not raw:
        raise ApiError("required", "Required parameter: part", "part")
    parts = {p.strip() for p in raw.split(",") if p.strip()}
    unknown = parts - allowed
    if unknown:
        raise ApiError("unknownPart", f"'{sorted(unknown)[0]}'", "part")
    return parts


def _max_results(params: dict[str, str]) -> int:
    raw = params.get("maxResults", "5")
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_RESULTS:
        raise ApiError(
            "invalidParameter",
            f"Invalid value '{raw}'. Values must be within the range: [0, {MAX_RESULTS}]",
            "maxResults",
        )
    return value


def playlist_items(state: SimState, params: dict[str, str]) -> dict:
    parts = _parts(params, {"id", "snippet", "contentDetails", "status"})
    playlist_id = params.get("playlistId")
    if not playlist_id and not params.get("id"):
        raise ApiError(
            "missingRequiredParameter",
            "No filter selected. Expected one of: playlistId, id",
            "parameters",
        )
    if playlist_id not in state.playlists:
        raise ApiError("playlistNotFound", location="playlistId")
    members = state.playlists[playlist_id]
    per_page = _max_results(params)
    offset = _page_offset(params["pageToken"]) if params.get("pageToken") else 0
    page = members[offset : offset + per_page]
    items = []
    for position, vid in enumerate(page, start=offset):
        item = _playlist_item(playlist_id, position, state.videos.get(vid), vid)
        items.append({k: v for k, v in item.items() if k in parts or k in ("kind", "etag", "id")})
    body: dict[str, Any] = {"kind": "youtube#playlistItemListResponse", "etag": ""}
    if offset + per_page < len(members) and per_page:
        body["nextPageToken"] = _page_token(offset + per_page)
    if offset:
        body["prevPageToken"] = _page_token(max(offset - per_page, 0))
    body["items"] = items
    body["pageInfo"] = {"totalResults": len(members), "resultsPerPage": per_page}
    body["etag"] = _etag(body)
    return body


def videos(state: SimState, params: dict[str, str]) -> dict:
    parts = _parts(
        params,
        {"id", "snippet", "statistics", "contentDetails", "status", "player", "topicDetails"},
    )
    raw_ids = params.get("id")
    if not raw_ids:
        raise ApiError(
            "missingRequiredParameter",
            "No filter selected. Expected one of: myRating, chart, id",
            "parameters",
        )
    ids = [i for i in raw_ids.split(",") if i]
    if len(ids) > MAX_RESULTS:
        raise ApiError(
            "invalidFilters",
            "The request specifies an invalid filter parameter.",
            "id",
        )
    if "pageToken" in params or "maxResults" in params:
        raise ApiError(
            "invalidFilters",
            "The request specifies an invalid filter parameter: maxResults and pageToken "
            "are not supported with id.",
            "parameters",
        )
    items = []
    for vid in ids:
        video = state.videos.get(vid)
        if video is None or video.privacy != "public":
            continue  # the real API silently leaves deleted and private videos out
        resource = _video_resource(video)
        items.append(
            {k: v for k, v in resource.items() if k in parts or k in ("kind", "etag", "id")}
        )
    body: dict[str, Any] = {
        "kind": "youtube#videoListResponse",
        "items": items,
        "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
    }
    body["etag"] = _etag(body)
    return body


class SimVideoIn(BaseModel):
    video_id: str
    title: str | None = None
    channel_title: str | None = None
    likes: int | None = Field(default=0, ge=0)
    comments: int | None = Field(default=0, ge=0)
    views: int = Field(default=0, ge=0)


class PlaylistIn(BaseModel):
    playlist_id: str
    videos: list[SimVideoIn] = []


class VideoPatch(BaseModel):
    title: str | None = None
    channel_title: str | None = None
    likes: int | None = Field(default=None, ge=0)
    comments: int | None = Field(default=None, ge=0)
    views: int | None = Field(default=None, ge=0)
    favorites: int | None = Field(default=None, ge=0)
    privacy: str | None = Field(default=None, pattern="^(public|private|deleted)$")


class FaultIn(BaseModel):
    reason: str = Field(description="an error reason (quotaExceeded, backendError, ...) or delay")
    endpoint: str | None = Field(default=None, pattern="^(videos|playlistItems)$")
    count: int = Field(default=1, ge=1)
    delay_s: float = Field(default=0.0, ge=0, le=60)


class QuotaIn(BaseModel):
    daily_limit: int | None = Field(default=None, ge=0)
    units_used: int | None = Field(default=None, ge=0)


class DriftIn(BaseModel):
    """Upper bounds of the random increments `POST /_sim/drift` applies to every video."""

    views: int = Field(default=100, ge=0)
    likes: int = Field(default=3, ge=0)
    comments: int = Field(default=1, ge=0)
    seed: int | None = None


class KeysIn(BaseModel):
    valid_keys: list[str] | None = None


def create_app(state: SimState | None = None) -> FastAPI:
    """The simulator as an ASGI app; ``state`` may be pre-seeded (else empty)."""
    app = FastAPI(title="YouTube Data API v3 simulator", docs_url=None, redoc_url=None)
    app.state.sim = state or SimState()

    def sim() -> SimState:
        return app.state.sim

    async def serve(endpoint: str, request: Request, handler) -> JSONResponse:
        state = sim()
        params = dict(request.query_params)
        state.charge(endpoint)
        try:
            key = params.get("key")
            if not key:
                raise ApiError("forbidden")
            if state.valid_keys is not None and key not in state.valid_keys:
                raise ApiError("badRequest")
            fault = state.take_fault(endpoint)
            if fault and fault.reason == "delay":
                await asyncio.sleep(fault.delay_s)
            elif fault:
                raise ApiError(fault.reason)
            if state.daily_limit is not None and state.units_used > state.daily_limit:
                raise ApiError("quotaExceeded")
            body = handler(state, params)
            if params.get("fields"):
                try:
                    body = apply_fields(body, parse_fields(params["fields"]))
                except FieldsError as exc:
                    raise ApiError(
                        "invalidParameter", f"Invalid field selection: {exc}", "fields"
                    ) from None
            return JSONResponse(body)
        except ApiError as exc:
            status, body = error_body(exc.reason, exc.message, exc.location)
            return JSONResponse(body, status_code=status)

    @app.get("/youtube/v3/playlistItems")
    async def list_playlist_items(request: Request) -> JSONResponse:
        return await serve("playlistItems", request, playlist_items)

    @app.get("/youtube/v3/videos")
    async def list_videos(request: Request) -> JSONResponse:
        return await serve("videos", request, videos)

    @app.post("/_sim/playlists", status_code=201)
    async def put_playlist(body: PlaylistIn) -> dict:
        """Creates or replaces a playlist; its videos are created or updated."""
        state = sim()
        for item in body.videos:
            video = state.videos.get(item.video_id)
            if video is None:
                video = state.videos[item.video_id] = SimVideo(
                    item.video_id, item.title or f"Video {item.video_id}"
                )
            for name in item.model_fields_set - {"video_id"}:
                setattr(video, name, getattr(item, name))
        state.playlists[body.playlist_id] = [v.video_id for v in body.videos]
        return {"playlist_id": body.playlist_id, "videos": len(body.videos)}

    @app.delete("/_sim/playlists/{playlist_id}", status_code=204)
    async def delete_playlist(playlist_id: str) -> None:
        sim().playlists.pop(playlist_id, None)

    @app.patch("/_sim/videos/{video_id}")
    async def patch_video(video_id: str, body: VideoPatch) -> dict:
        """Absolute values; ``null`` hides likes or turns comments off. Creates the video."""
        state = sim()
        nulled = sorted(
            name
            for name in body.model_fields_set - {"likes", "comments"}
            if getattr(body, name) is None
        )
        if nulled:  # was silently ignored: the caller thought it changed something
            raise HTTPException(
                422,
                f"{', '.join(nulled)} cannot be null (only likes, hidden, and comments, off, can)",
            )
        video = state.videos.setdefault(video_id, SimVideo(video_id, f"Video {video_id}"))
        for name in body.model_fields_set:
            setattr(video, name, getattr(body, name))
        return {
            "video_id": video_id,
            "likes": video.likes,
            "comments": video.comments,
            "views": video.views,
            "privacy": video.privacy,
        }

    @app.get("/_sim/quota")
    async def get_quota() -> dict:
        state = sim()
        if state.day != quota_day(datetime.now(UTC)):
            state.day, state.units_used, state.units_by_endpoint = (
                quota_day(datetime.now(UTC)),
                0,
                {},
            )
        return {
            "units_used": state.units_used,
            "daily_limit": state.daily_limit,
            "by_endpoint": dict(state.units_by_endpoint),
        }

    @app.post("/_sim/quota")
    async def set_quota(body: QuotaIn) -> dict:
        """Sets the daily limit (null: none) and/or today's units used (e.g. 0 to reset)."""
        state = sim()
        if "daily_limit" in body.model_fields_set:
            state.daily_limit = body.daily_limit
        if body.units_used is not None:
            state.day = quota_day(datetime.now(UTC))
            state.units_used = body.units_used
            state.units_by_endpoint = {}
        return await get_quota()

    @app.post("/_sim/faults", status_code=201)
    async def add_fault(body: FaultIn) -> dict:
        """The next ``count`` calls (to ``endpoint``, or any) fail with ``reason``."""
        if body.reason != "delay" and body.reason not in ERRORS:
            raise HTTPException(
                422, f"unknown reason {body.reason!r}; one of {sorted(ERRORS)} or delay"
            )
        sim().faults.append(Fault(body.reason, body.endpoint, body.count, body.delay_s))
        return {"faults": len(sim().faults)}

    @app.delete("/_sim/faults", status_code=204)
    async def clear_faults() -> None:
        sim().faults.clear()

    @app.put("/_sim/keys")
    async def set_keys(body: KeysIn) -> dict:
        """Only these keys are valid (null: any non-empty key)."""
        sim().valid_keys = set(body.valid_keys) if body.valid_keys is not None else None
        return {"valid_keys": len(body.valid_keys) if body.valid_keys is not None else None}

    @app.post("/_sim/drift")
    async def drift(body: DriftIn) -> dict:
        """Moves every public video's counts up by a random amount (for demos): hidden likes
        and disabled comments stay null."""
        rng = random.Random(body.seed)
        moved = 0
        for video in sim().videos.values():
            if video.privacy != "public":
                continue
            video.views += rng.randint(0, body.views)
            if video.likes is not None:
                video.likes += rng.randint(0, body.likes)
            if video.comments is not None:
                video.comments += rng.randint(0, body.comments)
            moved += 1
        return {"videos": moved}

    @app.post("/_sim/reset", status_code=204)
    async def reset() -> None:
        app.state.sim = SimState()

    return app
