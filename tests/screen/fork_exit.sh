#!/bin/sh
# Screening test program: leaves a child behind that holds stdout open, and exits having
# answered accept: the run must end at the exit, and the child be killed with the group.
sleep 100 &
echo $! >"$SCREEN_TEST_DIR/child.pid.tmp"
mv "$SCREEN_TEST_DIR/child.pid.tmp" "$SCREEN_TEST_DIR/child.pid"
cat >/dev/null
echo accept
