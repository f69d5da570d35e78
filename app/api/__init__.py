"""HTTP front door: thin routers, one per resource, over `app.gallery`."""
