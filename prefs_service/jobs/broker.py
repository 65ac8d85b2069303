"""Choose the dramatiq broker from PREFS_BROKER_URL."""

from __future__ import annotations

from urllib.parse import urlsplit

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker


def create_broker(url: str) -> dramatiq.Broker:
    """Empty URL: the in-memory stub broker (embedded mode; the sweeper is the
    safety net, so nothing is lost when the process restarts)."""
    if not url:
        return StubBroker()
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30)
        return RedisBroker(client=client)
    if scheme in ("amqp", "amqps"):
        return RabbitmqBroker(url=url, confirm_delivery=True)
    raise ValueError(f"unsupported broker URL scheme {scheme!r}")


def ping(broker: dramatiq.Broker) -> None:
    """Raise if the broker cannot be reached."""
    if isinstance(broker, RedisBroker):
        broker.client.ping()
    elif isinstance(broker, RabbitmqBroker):
        # Opening (or reusing) this thread's connection proves it is up.
        broker.connection.process_data_events(time_limit=0)


def waiting(broker: dramatiq.Broker, queue_name: str) -> int | None:
    """How many messages wait in `queue_name` (not yet handed to a worker), or
    None if this broker cannot say."""
    if isinstance(broker, StubBroker):
        queue = broker.queues.get(queue_name)
        return queue.qsize() if queue is not None else 0
    if isinstance(broker, RedisBroker):  # dramatiq keeps a queue's message ids in one list
        return int(broker.client.llen(f"{broker.namespace}:{queue_name}"))
    if isinstance(broker, RabbitmqBroker):  # (re-)declaring the queue reports its ready messages
        return int(broker.get_queue_message_counts(queue_name)[0])
    return None
