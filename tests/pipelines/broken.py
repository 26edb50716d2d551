"""A subscribers module with a mistake: two subscribers share a name."""

from hamster import Subscriber, task


@task
def t(ctx):
    return None


SUBSCRIBERS = [
    Subscriber("same", events=["push"], pipeline=[t]),
    Subscriber("same", events=["push"], pipeline=[t]),
]
