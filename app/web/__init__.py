"""Pages: the gallery, enrollment, probe results and admin, served by the app itself.

Server-rendered Jinja2 templates over the `Gallery` facade, with a few small
plain JavaScript files that call the JSON API (no build step, no CDN).
`site.install_pages(app)` wires them into the app.
"""
