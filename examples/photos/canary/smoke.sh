#!/bin/sh
# Smoke-tests node $1 on revision $2 (`[canary] smoke_command`). Fails when the node does not
# report the revision it was given; a real smoke test would also call the node, e.g.
#   curl -fsS "http://$1:8080/healthz"
set -eu
state="${CANARY_STATE_DIR:?set CANARY_STATE_DIR}"
test "$(cat "$state/$1")" = "$2"
