"""Rendering: Jinja2 templates and CSS inlining (``templates``), MIME assembly (``message``)."""
