#!/bin/sh
# Prints the revision node $1 runs (`[canary.deployer] current`): the rollback target.
set -eu
state="${CANARY_STATE_DIR:?set CANARY_STATE_DIR}"
cat "$state/$1"
