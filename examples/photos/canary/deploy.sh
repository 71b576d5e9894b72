#!/bin/sh
# Deploys revision $2 to node $1 for `[canary.deployer] kind = "command"`.
#
# This version records node → revision under $CANARY_STATE_DIR, which is how the end-to-end
# tests and the benchmark stand in for real hosts. A real deployer replaces the body, e.g.:
#   ssh -- "$1" "sudo /opt/photos/bin/install '$2'"
# ssh hands its arguments to a shell on the node, so the revision is quoted for that shell too
# (the gate only passes revisions that match `canary.revision_pattern`, which has no quotes).
# It must be idempotent: deploying the revision a node already runs succeeds and changes nothing.
set -eu
node="$1"
revision="$2"
state="${CANARY_STATE_DIR:?set CANARY_STATE_DIR}"
mkdir -p "$state"
printf '%s\n' "$revision" >"$state/$node"
printf '%s %s\n' "$node" "$revision" >>"$state/deploy.log"
