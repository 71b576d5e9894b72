#!/bin/sh
# Starts or stops queue consumption on worker node $2 (`[canary] repool_command` /
# `depool_command` of a worker fleet): `consume.sh start|stop <node>`.
#
# This version records the node's state under $CANARY_STATE_DIR, which is how the end-to-end
# tests stand in for real hosts. A real one would, e.g.:
#   ssh -- "$2" "sudo systemctl '$1' photos-unzip-worker"
# (ssh hands its arguments to a shell on the node: quote them for that shell too)
# `stop` must return only once the worker has finished (or handed back) the messages it holds,
# and both must be idempotent.
set -eu
verb="$1"
node="$2"
state="${CANARY_STATE_DIR:?set CANARY_STATE_DIR}"
mkdir -p "$state"
case "$verb" in
  start) printf 'on\n' >"$state/$node.consuming" ;;
  stop) printf 'off\n' >"$state/$node.consuming" ;;
  *) echo "usage: consume.sh start|stop <node>" >&2; exit 2 ;;
esac
printf '%s %s\n' "$verb" "$node" >>"$state/consume.log"
