"""The default templates (emails and web pages), installed as the package dispatch.templates.

An outlet's own folder (DISPATCH_TEMPLATES) is searched first; these fill in what it lacks.
"""
