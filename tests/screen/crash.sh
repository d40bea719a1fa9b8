#!/bin/bash
# Screening test program: answers accept, then dies of a signal (no core file).
ulimit -c 0
cat >/dev/null
echo accept
kill -SEGV $$
