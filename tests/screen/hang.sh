#!/bin/sh
# Screening test program: tells the test its process group (its pid: it leads the group),
# then hangs, in a child, until killed.
echo $$ >"$SCREEN_TEST_DIR/hang.pid.tmp"
mv "$SCREEN_TEST_DIR/hang.pid.tmp" "$SCREEN_TEST_DIR/hang.pid"
sleep 100
