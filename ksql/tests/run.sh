#!/usr/bin/env sh
# Runs every fixture in ksql/tests/ through ksqlDB's own test runner (needs Docker only):
#   ksql/tests/run.sh            (from anywhere; exit 0 when all cases pass)
# Each case is a folder with input.json and output.json in ksql-test-runner's format.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
image=${KSQLDB_CLI_IMAGE:-confluentinc/ksqldb-cli:0.29.0}
failed=0
for case_dir in "$here"/tests/*/; do
  name=$(basename "$case_dir")
  if docker run --rm -v "$here:/ksql:ro" --entrypoint ksql-test-runner "$image" \
      -s /ksql/statements.sql -i "/ksql/tests/$name/input.json" \
      -o "/ksql/tests/$name/output.json" >"/tmp/ksql-test-$name.log" 2>&1; then
    echo "ok    $name"
  else
    echo "FAIL  $name (log: /tmp/ksql-test-$name.log)"
    failed=1
  fi
done
exit $failed
