"""A client for the simulator's ``/_sim`` control endpoints (tests, benchmarks, the demo)."""

from __future__ import annotations

import httpx


def sim_video(
    video_id: str,
    title: str | None = None,
    likes: int | None = 0,
    comments: int | None = 0,
    views: int = 0,
) -> dict:
    """One entry of ``POST /_sim/playlists``."""
    return {
        "video_id": video_id,
        "title": title or f"Video {video_id}",
        "likes": likes,
        "comments": comments,
        "views": views,
    }


class SimControl:
    """The simulator's ``/_sim`` control endpoints, as plain method calls."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.api_url = f"{base_url}/youtube/v3"
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def add_playlist(self, playlist_id: str, videos: list[dict]) -> None:
        self.http.post(
            "/_sim/playlists", json={"playlist_id": playlist_id, "videos": videos}
        ).raise_for_status()

    def delete_playlist(self, playlist_id: str) -> None:
        self.http.delete(f"/_sim/playlists/{playlist_id}").raise_for_status()

    def patch_video(self, video_id: str, **changes: object) -> dict:
        response = self.http.patch(f"/_sim/videos/{video_id}", json=changes)
        response.raise_for_status()
        return response.json()

    def quota(self) -> dict:
        return self.http.get("/_sim/quota").raise_for_status().json()

    def units(self) -> int:
        return self.quota()["units_used"]

    def set_quota(self, **body: object) -> dict:
        return self.http.post("/_sim/quota", json=body).raise_for_status().json()

    def fault(
        self, reason: str, endpoint: str | None = None, count: int = 1, delay_s: float = 0
    ) -> None:
        """The next ``count`` calls fail with ``reason`` (or answer late: ``delay``)."""
        body = {"reason": reason, "endpoint": endpoint, "count": count, "delay_s": delay_s}
        self.http.post("/_sim/faults", json=body).raise_for_status()

    def set_keys(self, valid_keys: list[str] | None) -> None:
        self.http.put("/_sim/keys", json={"valid_keys": valid_keys}).raise_for_status()

    def drift(self, **bounds: int) -> int:
        """Random increments to every public video (``views=``, ``likes=``, ``comments=``)."""
        return self.http.post("/_sim/drift", json=bounds).raise_for_status().json()["videos"]

    def reset(self) -> None:
        self.http.post("/_sim/reset").raise_for_status()

    def close(self) -> None:
        self.http.close()
