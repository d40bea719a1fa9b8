#!/bin/sh
# Screening test program: exits 0 without answering.
cat >/dev/null
