-- tubewatch change detection for ksqlDB 0.29 / Confluent Platform 7.x.
--
-- Statements run in file order; headless mode (KSQL_KSQL_QUERIES_FILE) re-runs the whole
-- file at every start and numbers queries by position, so only ever APPEND statements.
-- Server settings this file relies on (they cannot be SET here, see ksql/README.md):
--   ksql.streams.cache.max.bytes.buffering=0   (no update coalesced away)
--   ksql.streams.auto.offset.reset=earliest
-- Semantics: CONTRACT.md, topic video_changes. The Python engine `tubewatch changes`
-- produces the same records; ksql/tests/ is the shared fixture set both are checked against.

-- 1. The poller's snapshots. Key: the video id as plain UTF-8 (KEY_FORMAT KAFKA).
--    The value's own video_id field equals the key and is not declared.
CREATE STREAM IF NOT EXISTS youtube_videos_stream (
  `video_id` VARCHAR KEY,
  `title` VARCHAR,
  `thumbnail` VARCHAR,
  `likes` BIGINT,
  `comments` BIGINT,
  `views` BIGINT,
  `polled_at` VARCHAR
) WITH (KAFKA_TOPIC='youtube_videos', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON');

-- 2. Per video: the current title/thumbnail/polled_at and the last two values of each
--    count, oldest first. ignoreNulls=false everywhere: a null (hidden likes, comments off)
--    takes its place in the pair, and the title/thumbnail are those of the latest snapshot.
--    Grouped by the key column, so no repartition and per-key offset order is kept.
--    No HAVING: filtering here would write tombstones.
CREATE TABLE IF NOT EXISTS video_stats
  WITH (KAFKA_TOPIC='tubewatch_video_stats', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON') AS
  SELECT
    `video_id`,
    LATEST_BY_OFFSET(`title`, false) AS `title`,
    LATEST_BY_OFFSET(`thumbnail`, false) AS `thumbnail`,
    LATEST_BY_OFFSET(`likes`, 2, false) AS `likes`,
    LATEST_BY_OFFSET(`comments`, 2, false) AS `comments`,
    LATEST_BY_OFFSET(`views`, 2, false) AS `views`,
    LATEST_BY_OFFSET(`polled_at`, false) AS `polled_at`
  FROM youtube_videos_stream
  GROUP BY `video_id`
  EMIT CHANGES;

-- 3. A TABLE cannot feed CREATE STREAM AS SELECT: re-declare its changelog topic as a STREAM.
--    The key column gets its own name so the value can carry `video_id` in statement 4.
CREATE STREAM IF NOT EXISTS video_stats_changelog (
  `video_key` VARCHAR KEY,
  `title` VARCHAR,
  `thumbnail` VARCHAR,
  `likes` ARRAY<BIGINT>,
  `comments` ARRAY<BIGINT>,
  `views` ARRAY<BIGINT>,
  `polled_at` VARCHAR
) WITH (KAFKA_TOPIC='tubewatch_video_stats', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON');

-- 4. Only the rows where a count moved: [-2] is the previous snapshot's value, [-1] the
--    current one ([-2] is NULL after the first snapshot). A comparison with NULL is not
--    true, so a count that is null on either side is not a change. Value columns in the
--    contract's order, lowercase names.
CREATE STREAM IF NOT EXISTS video_changes
  WITH (KAFKA_TOPIC='video_changes', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON') AS
  SELECT
    `video_key`,
    AS_VALUE(`video_key`) AS `video_id`,
    `title`,
    `thumbnail`,
    `likes`[-2] AS `likes_previous`,
    `likes`[-1] AS `likes_current`,
    `comments`[-2] AS `comments_previous`,
    `comments`[-1] AS `comments_current`,
    `views`[-2] AS `views_previous`,
    `views`[-1] AS `views_current`,
    `polled_at`
  FROM video_stats_changelog
  WHERE `likes`[-2] <> `likes`[-1]
     OR `comments`[-2] <> `comments`[-1]
     OR `views`[-2] <> `views`[-1]
  EMIT CHANGES;
