"""meetmood's web app: aiohttp + Jinja2 pages, the JSON API and the sidebar WebSocket."""
