"""tubewatch: notifications for YouTube statistics.

This package is the shared contract every service imports: message models
(`tubewatch.messages`), settings (`tubewatch.settings`), Kafka helpers (`tubewatch.kafka`),
the database models and session (`tubewatch.db`, `tubewatch.models`) and secret handling
(`tubewatch.secrets`). The services live in `services/` and install as
`tubewatch.poller`, `tubewatch.changes`, `tubewatch.notifier`, `tubewatch.api` and
`tubewatch.youtube_sim`.
"""

__version__ = "0.1.0"
