"""Use cases: each composes the capability modules into one thing the editor does."""
