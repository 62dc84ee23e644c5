#!/usr/bin/env bash
# The whole weekly job on bundled sample data: no network, no configuration.
# Usage: scripts/demo.sh [--workdir DIR]
source "$(dirname "$0")/_venv.sh"
exec "$VENV/bin/dispatch" --no-dotenv demo "$@"
