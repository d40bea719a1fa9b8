#!/bin/sh
# Screening test program: proves it read its JSON input. When the creditor is the one the test
# sends, it rejects with a code made of the amount's last three digits ("A042"), after
# $SCREEN_TEST_DELAY seconds if that is set; otherwise it holds.
input=$(cat)
case "$input" in
*'"creditor":{"name":"Pars Trading"'*) ;;
*) echo hold; exit 0 ;;
esac
amount=$(printf '%s' "$input" | sed -n 's/.*"amount_minor":\([0-9]*\).*/\1/p')
if [ -n "${SCREEN_TEST_DELAY:-}" ]; then sleep "$SCREEN_TEST_DELAY"; fi
printf 'reject A%03d\n' $((amount % 1000))
