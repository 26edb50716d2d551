"""GitHub: what Hamster tells it and takes from it.

Pure: ``reporting`` (what to report about a run), ``check_actions`` (what a click on a check run asks for),
``forks`` (whether a fork's run is trusted), ``app_manifest`` (the GitHub App Hamster needs),
``rate_limit`` (the waiting rules). Adapters, the only modules that import github3: ``session`` (token or
installation auth, API URL), ``app`` (the App's JWT and its installations' tokens), ``client`` (one
connection per worker and installation, awaitable calls), ``objects`` (``ctx.github``: the event's
connected objects).
"""
