# One image for every Hamster process: `hamster web` and `hamster worker` (see compose.yaml).
FROM python:3.11-slim-bookworm

# git and ssh: pipeline tasks check repositories out (over ssh with the key compose mounts as a secret).
# bubblewrap and slirp4netns: the sandbox shell stages run in (README, "Security").
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends git openssh-client \
        bubblewrap slirp4netns \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 hamster
WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p hamster streams agents \
    && touch hamster/__init__.py streams/__init__.py agents/__init__.py \
    && pip install --no-cache-dir . \
    && pip uninstall -y hamster-ci
COPY hamster ./hamster
COPY streams ./streams
COPY agents ./agents
RUN pip install --no-cache-dir --no-deps .

# HAMSTER_HOME, and the working directory: Faust keeps its worker data beside it.
RUN mkdir -p /var/lib/hamster/artifacts && chown -R hamster:hamster /var/lib/hamster
WORKDIR /var/lib/hamster
USER hamster
ENV HAMSTER_HOME=/var/lib/hamster \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app/pipelines
# The subscribers module (HAMSTER_SUBSCRIBERS) comes from /app/pipelines, mounted by compose.
CMD ["hamster", "--help"]
