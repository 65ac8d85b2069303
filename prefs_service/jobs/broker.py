"""Choose the dramatiq broker from PREFS_BROKER_URL."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

import dramatiq
from dramatiq.brokers.stub import StubBroker

# The Redis and RabbitMQ brokers (and their client libraries, about 10 MB) are
# imported only by a process that uses one.
if TYPE_CHECKING:
    from dramatiq.brokers.rabbitmq import RabbitmqBroker
    from dramatiq.brokers.redis import RedisBroker


def create_broker(url: str) -> dramatiq.Broker:
    """Empty URL: the in-memory stub broker (embedded mode; the sweeper is the
    safety net, so nothing is lost when the process restarts)."""
    if not url:
        return StubBroker()
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        import redis
        from dramatiq.brokers.redis import RedisBroker

        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30)
        return RedisBroker(client=client)
    if scheme in ("amqp", "amqps"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, confirm_delivery=True)
    raise ValueError(f"unsupported broker URL scheme {scheme!r}")


def ping(broker: dramatiq.Broker) -> None:
    """Raise if the broker cannot be reached."""
    if (on_redis := _redis(broker)) is not None:
        on_redis.client.ping()
    elif (on_rabbitmq := _rabbitmq(broker)) is not None:
        # Opening (or reusing) this thread's connection proves it is up.
        on_rabbitmq.connection.process_data_events(time_limit=0)


def waiting(broker: dramatiq.Broker, queue_name: str) -> int | None:
    """How many messages wait in `queue_name` (not yet handed to a worker), or
    None if this broker cannot say."""
    if isinstance(broker, StubBroker):
        queue = broker.queues.get(queue_name)
        return queue.qsize() if queue is not None else 0
    if (on_redis := _redis(broker)) is not None:  # dramatiq keeps a queue's message ids in one list
        return int(on_redis.client.llen(f"{on_redis.namespace}:{queue_name}"))
    if (on_rabbitmq := _rabbitmq(broker)) is not None:  # (re-)declaring the queue reports its ready messages
        return int(on_rabbitmq.get_queue_message_counts(queue_name)[0])
    return None


def _redis(broker: dramatiq.Broker) -> RedisBroker | None:
    """`broker` if it is dramatiq's Redis broker."""
    return cast("RedisBroker | None", _loaded_instance(broker, "dramatiq.brokers.redis", "RedisBroker"))


def _rabbitmq(broker: dramatiq.Broker) -> RabbitmqBroker | None:
    """`broker` if it is dramatiq's RabbitMQ broker."""
    return cast("RabbitmqBroker | None", _loaded_instance(broker, "dramatiq.brokers.rabbitmq", "RabbitmqBroker"))


def _loaded_instance(broker: dramatiq.Broker, module: str, name: str) -> dramatiq.Broker | None:
    """`broker` if it is an instance of `module`.`name`, told without importing
    the module: if no one imported it, no broker of it exists."""
    found = sys.modules.get(module)
    return broker if found is not None and isinstance(broker, getattr(found, name)) else None
