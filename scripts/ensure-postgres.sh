#!/bin/sh
# The tuning tests start a PostgreSQL server of their own (tests/postgres.py): make sure its programs are there
# before `make test` runs them. Debian's postgresql when we can install it (root and apt-get); otherwise one line
# saying what to install, and a non-zero exit (the PostgreSQL tests never skip).
# Usage: scripts/ensure-postgres.sh PYTHON   (any python 3; tests/postgres.py needs only the standard library)
set -u
python=${1:-python3}
sh scripts/ensure-debian-package.sh postgresql "the tuning tests" "$python" tests/postgres.py && exit 0
echo "make test: no PostgreSQL server programs (initdb, pg_ctl) for the tuning tests: install Debian's postgresql" \
     "(sudo apt-get install postgresql) or put your PostgreSQL's bin folder on PATH, then run make test again" >&2
exit 1
