#!/bin/sh
# Screening test program: an answer that is none of accept, hold, reject CODE.
cat >/dev/null
echo 'accept please'
