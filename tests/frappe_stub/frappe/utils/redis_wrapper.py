"""frappe.cache for the stand-in: Frappe v15's RedisWrapper behaviour on the `redis_cache` of
common_site_config.json. Keys are `<db_name>|<key>`, values pickled, and every value read or
written is also kept in frappe.local.cache for the rest of the frappe.init."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from typing import Any

import redis

import frappe


class RedisWrapper(redis.Redis):
    def make_key(self, key: str, user: str | None = None, shared: bool = False) -> bytes:
        if shared:
            return key.encode()
        if user:
            key = f"user:{user}:{key}"
        return f"{frappe.local.conf.db_name}|{key}".encode()

    def set_value(self, key: str, val: Any, user: str | None = None, expires_in_sec: int | None = None,
                  shared: bool = False) -> None:
        k = self.make_key(key, user, shared)
        if not expires_in_sec:
            frappe.local.cache[k] = val
        if expires_in_sec:
            self.setex(name=k, time=expires_in_sec, value=pickle.dumps(val))
        else:
            self.set(k, pickle.dumps(val))

    def get_value(self, key: str, generator: Callable[[], Any] | None = None, user: str | None = None,
                  expires: bool = False, shared: bool = False) -> Any:
        k = self.make_key(key, user, shared)
        if k in frappe.local.cache:
            return frappe.local.cache[k]
        raw = self.get(k)
        val = pickle.loads(raw) if raw is not None else None  # noqa: S301  # our own test cache
        if not expires:
            if val is None and generator:
                val = generator()
                self.set_value(key, val, user=user, shared=shared)
            else:
                frappe.local.cache[k] = val
        return val

    def get_keys(self, key: str) -> list[bytes]:
        """Keys of this site starting with `key`."""
        return list(self.keys(self.make_key(key + "*")))

    def delete_value(self, keys: str | bytes | Sequence[str | bytes], user: str | None = None,
                     make_keys: bool = True, shared: bool = False) -> None:
        if not keys:
            return
        if isinstance(keys, (str, bytes)):
            keys = [keys]
        names = [self.make_key(k, user, shared) if make_keys else k for k in keys]  # type: ignore[arg-type]
        for name in names:
            frappe.local.cache.pop(name, None)
        self.delete(*names)


def setup_cache(url: str | None) -> RedisWrapper:
    if not url:
        raise frappe.ValidationError(
            "redis_cache is not set in common_site_config.json: the stand-in caches hooks in Redis as Frappe does")
    return RedisWrapper.from_url(url)
