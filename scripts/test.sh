#!/usr/bin/env bash
# The whole test suite. Installs what it needs: ./.venv with Dispatch and its dev tools, and
# Debian's chromium (browser tests), postfix (smtp-sink for send tests and the benchmark),
# dovecot-imapd (a real IMAP server for the bounce tests) and spamassassin (mail quality tests).
# Usage: scripts/test.sh [pytest arguments]
EXTRAS=dev  # pytest, Playwright, ruff, mypy: the demo installs without them
source "$(dirname "$0")/_venv.sh"

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/sbin/smtp-sink ] || missing+=(postfix)
[ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
[ -x /usr/bin/spamassassin ] || missing+=(spamassassin)
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
set -e
if [ "$status" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
