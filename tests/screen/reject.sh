#!/bin/sh
# Screening test program: rejects with RR04 (regulatory reason), without a final newline.
cat >/dev/null
printf 'reject RR04'
