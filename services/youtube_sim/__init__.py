"""tubewatch.youtube_sim: a YouTube Data API v3 simulator (playlistItems.list, videos.list).

`app.create_app()` is the FastAPI app, `server.serve_in_thread()` runs it on a loopback port
from a thread, `control.SimControl` drives its ``/_sim`` endpoints, `cli` is
``tubewatch youtube-sim``.
"""
