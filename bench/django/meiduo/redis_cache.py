"""
What the course takes from django-redis (not packaged in Debian 12): `get_redis_connection(alias)`
returns a raw redis-py client of that cache (keys as written, one connection pool per process),
and a cache backend pickling values, for the sessions.
"""
import pickle
import time

import redis
from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

_clients = {}


def _client(location):
    client = _clients.get(location)
    if client is None:
        client = _clients[location] = redis.Redis.from_url(location)
    return client


def get_redis_connection(alias='default'):
    return _client(settings.CACHES[alias]['LOCATION'])


class RedisCache(BaseCache):
    def __init__(self, server, params):
        super().__init__(params)
        self._location = server

    @property
    def _redis(self):
        return _client(self._location)

    def _ttl(self, timeout):
        timeout = self.get_backend_timeout(timeout)
        return None if timeout is None else max(1, int(timeout - time.time()))

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_key(key, version=version)
        return bool(self._redis.set(key, pickle.dumps(value), ex=self._ttl(timeout), nx=True))

    def get(self, key, default=None, version=None):
        raw = self._redis.get(self.make_key(key, version=version))
        return default if raw is None else pickle.loads(raw)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._redis.set(self.make_key(key, version=version), pickle.dumps(value), ex=self._ttl(timeout))

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        ttl = self._ttl(timeout)
        key = self.make_key(key, version=version)
        return bool(self._redis.persist(key) if ttl is None else self._redis.expire(key, ttl))

    def delete(self, key, version=None):
        return bool(self._redis.delete(self.make_key(key, version=version)))

    def has_key(self, key, version=None):
        return bool(self._redis.exists(self.make_key(key, version=version)))

    def clear(self):
        raise NotImplementedError('the bench never clears a shared Redis database')
