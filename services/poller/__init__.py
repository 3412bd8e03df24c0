"""tubewatch.poller: polls YouTube for every active watch and produces `youtube_videos`.

`service.Poller` is the service (``run(stop)``, ``tick()``, ``run_cycle()``, ``status()``);
`youtube` the API client, `planner` the quota arithmetic, `backoff` the retry delays,
`metrics` its Prometheus metrics, `cli` ``tubewatch poller [--once]``.
"""
