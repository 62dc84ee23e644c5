#!/usr/bin/env bash
# The whole test suite. Installs what it needs: ./.venv with Dispatch and its dev tools, and
# Debian's chromium (browser tests), postfix (smtp-sink for send tests and the benchmark),
# dovecot-imapd (a real IMAP server for the bounce tests), spamassassin (mail quality tests) and
# postgresql (initdb/pg_ctl: the store tests run again on a throwaway PostgreSQL cluster).
# Usage: scripts/test.sh [pytest arguments]
EXTRAS=dev  # pytest, Playwright, ruff, mypy: the demo installs without them
source "$(dirname "$0")/_venv.sh"

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/sbin/smtp-sink ] || missing+=(postfix)
[ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
[ -x /usr/bin/spamassassin ] || missing+=(spamassassin)
# initdb and pg_ctl for the throwaway cluster of tests/plugins/postgres.py (no server is run)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "Installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    else
        echo "warning: not root, cannot install ${missing[*]}; tests needing them will skip" >&2
    fi
fi

cd "$ROOT"
set +e
"$VENV/bin/python" -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
# Every test that touches a database again on PostgreSQL (DISPATCH_TEST_DB=postgresql; a
# throwaway cluster of tests/plugins/postgres.py; tests/conftest.py leaves out the ones that use
# no database). Not when pytest arguments were given: DISPATCH_TEST_DB=postgresql runs one pass.
if [ "$status" -eq 0 ] && [ "$#" -eq 0 ]; then
    echo "Again on PostgreSQL:"
    DISPATCH_TEST_DB=postgresql "$VENV/bin/python" -m pytest -q
    status=$?
fi
set -e
exit "$status"
