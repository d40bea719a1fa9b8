#!/bin/sh
# Screening test program: asks for a person's review.
cat >/dev/null
echo hold
