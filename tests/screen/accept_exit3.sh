#!/bin/sh
# Screening test program: answers accept, then fails.
cat >/dev/null
echo accept
exit 3
