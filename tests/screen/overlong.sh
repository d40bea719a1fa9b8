#!/bin/sh
# Screening test program: "accept" followed by 300 spaces, over the 256 bytes read.
cat >/dev/null
printf 'accept%300s\n' ''
