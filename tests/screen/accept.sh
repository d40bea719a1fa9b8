#!/bin/sh
# Screening test program: reads the payment and accepts it.
cat >/dev/null
echo accept
