"""``/docs`` and ``/redoc`` work offline: their assets come from the app, and headless
Chromium (with background networking off) renders the operations."""

from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import pytest

from tests.api_fixtures import LiveServer

pytest_plugins = ["tests.api_fixtures"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_docs_pages_reference_no_cdn(api):
    for page in ("/docs", "/redoc"):
        html = api.client.get(page).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets, page
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
            assert api.client.get(asset).status_code == 200, asset


def _render(url: str, tmp_path) -> str:
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_swagger_ui_and_redoc_render_the_operations(api_settings, tmp_path):
    with LiveServer(api_settings) as server:
        assert httpx.get(f"{server.url}/openapi.json").status_code == 200
        swagger = _render(f"{server.url}/docs", tmp_path)
        redoc = _render(f"{server.url}/redoc", tmp_path)
    # Swagger UI: one "opblock" per operation, with its path.
    assert swagger.count('class="opblock opblock-') >= 15, swagger[:2000]
    for path in ("/watches", "/subscriptions/{subscription_id}/test", "/deliveries", "/quota"):
        assert f'data-path="{path}"' in swagger, path
    # ReDoc: the operations' summaries appear in its rendered menu.
    for summary in ("Create Watch", "Test Subscription", "List Deliveries"):
        assert summary in redoc, summary
