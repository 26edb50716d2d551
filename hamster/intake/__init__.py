"""The intake: a GitHub delivery checked, parsed and stored.

Pure: ``signatures`` (HMAC), ``envelope`` (a webhook parsed into the record kept on the events topic),
``github_events`` (GitHub's event names and the facts a pipeline filters on). Adapters: ``http`` (the aiohttp
intake), ``sender`` (send a webhook the way GitHub does).
"""
