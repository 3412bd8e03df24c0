"""The alert text (CONTRACT.md, "Alerts"), shaped per channel.

An alert names the video title, each changed metric as ``previous → current (+delta)`` and
``https://youtu.be/<video_id>``. A digest lists several videos of one watch in one alert.
The same alert is written in Markdown for channels that render it (or HTML, which apprise
converts Markdown into) and in plain text elsewhere, and cut to the channel's length limit
so that no channel rejects it (Telegram: 4096 characters).
"""

from __future__ import annotations

from dataclasses import dataclass

import apprise

from tubewatch.targets import body_limit, supports_markdown

# Markdown grows when apprise turns it into HTML (``**x**`` -> ``<strong>x</strong>``,
# line breaks -> ``<br/>``); keep this share of the limit free for that growth.
MARKDOWN_HEADROOM = 0.25


@dataclass(frozen=True)
class MetricChange:
    metric: str
    previous: int
    current: int

    @property
    def delta(self) -> int:
        return self.current - self.previous


@dataclass(frozen=True)
class VideoAlert:
    """What one change event says to one subscription (the metrics it follows that moved)."""

    video_id: str
    title: str | None
    changes: tuple[MetricChange, ...]

    @property
    def link(self) -> str:
        return f"https://youtu.be/{self.video_id}"

    @property
    def name(self) -> str:
        return self.title or self.video_id


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str
    body_format: str


_MARKDOWN_SPECIAL = "\\`*_{}[]<>()#+-.!|~"


def escape_markdown(text: str) -> str:
    """A video title as literal Markdown text (titles are user content: ``*NEW*``, ``a_b``)."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in text)


def _link(alert: VideoAlert, markdown: bool) -> str:
    """The video link; in Markdown an autolink (``<https://…>``), else ``_`` and ``-`` in the id
    turn into emphasis: ``https://youtu.be/-_-_-_-_-_A`` would lose its link."""
    return f"<{alert.link}>" if markdown else alert.link


def _line(change: MetricChange, markdown: bool) -> str:
    metric = f"**{change.metric}**" if markdown else change.metric
    return f"{metric}: {change.previous} → {change.current} ({change.delta:+d})"


def _summary(alert: VideoAlert) -> str:
    return ", ".join(f"{c.metric} {c.delta:+d}" for c in alert.changes)


def alert_title(
    alerts: list[VideoAlert], markdown: bool = False, escape: bool | None = None
) -> str:
    """``"<video title>: likes +3"`` for one video; ``"N videos changed"`` for a digest.

    apprise reads the title as Markdown too when it converts a Markdown body to HTML, hence
    the escaping (``escape``, by default as ``markdown``).
    """
    escape = markdown if escape is None else escape
    if len(alerts) == 1:
        name = escape_markdown(alerts[0].name) if escape else alerts[0].name
        return f"{name}: {_summary(alerts[0])}"
    return f"{len(alerts)} videos changed"


def _blocks(alerts: list[VideoAlert], markdown: bool, escape: bool) -> list[str]:
    """One block of lines per video: heading (digests only), metric lines, link."""
    blocks = []
    for alert in alerts:
        lines = []
        if len(alerts) > 1:
            name = escape_markdown(alert.name) if escape else alert.name
            lines.append(f"**{name}**" if markdown else alert.name)
        lines.extend(_line(c, markdown) for c in alert.changes)
        lines.append(_link(alert, markdown))
        blocks.append("\n".join(lines))
    return blocks


def render(
    alerts: list[VideoAlert], markdown: bool, limit: int | None = None, escape: bool | None = None
) -> tuple[str, str]:
    """(title, body) for one or several videos, the body at most ``limit`` characters.

    ``escape`` (default: as ``markdown``) backslash-escapes titles for Markdown that apprise
    turns into HTML; channels with a Markdown dialect of their own (Slack) show backslashes.

    Whole videos are dropped from the end (with a "… and N more" line) before anything is cut
    inside one, so every video shown keeps its link.
    """
    escape = markdown if escape is None else escape
    title = alert_title(alerts, markdown, escape)
    blocks = _blocks(alerts, markdown, escape)
    body = "\n\n".join(blocks)
    if limit is None or len(body) <= limit:
        return title, body
    kept: list[str] = []
    for index, block in enumerate(blocks):
        more = f"\n\n… and {len(blocks) - index - 1} more" if index < len(blocks) - 1 else ""
        candidate = "\n\n".join([*kept, block])
        if len(candidate) + len(more) > limit:
            break
        kept.append(block)
    if not kept:
        return title, body[: max(limit - 1, 0)] + "…"
    dropped = len(blocks) - len(kept)
    tail = f"\n\n… and {dropped} more" if dropped else ""
    return title, "\n\n".join(kept) + tail


def _converts_to_html(plugin: apprise.plugins.NotifyBase) -> bool:
    """True where apprise turns a Markdown body into HTML (Telegram, email): Python-Markdown
    honours backslash escapes. Channels that take Markdown in their own dialect (Slack's
    mrkdwn, its title as plain text) have no escapes: a backslash would be shown."""
    formats = plugin.notify_format
    preferred = formats[0] if isinstance(formats, (tuple, list)) else formats
    return preferred == apprise.NotifyFormat.HTML


def render_for(plugin: apprise.plugins.NotifyBase, alerts: list[VideoAlert]) -> Rendered:
    """The alert in the format the channel speaks, within its length limit."""
    markdown = supports_markdown(plugin)
    escape = markdown and _converts_to_html(plugin)
    title = alert_title(alerts, markdown, escape)
    limit = body_limit(plugin, title)
    if markdown:
        limit = int(limit * (1 - MARKDOWN_HEADROOM))
    title, body = render(alerts, markdown, limit, escape)
    fmt = apprise.NotifyFormat.MARKDOWN if markdown else apprise.NotifyFormat.TEXT
    return Rendered(title, body, fmt)
