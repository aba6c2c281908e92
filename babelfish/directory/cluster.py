"""Several babelfish servers behind one number: the call state they share, kept in Redis.

The directory decides *where* things live; each server's :class:`~babelfish.core.rooms.Switchboard` keeps the live
objects (legs with their sessions) of the rooms it hosts. What is shared:

    bf:servers                 set of server ids that ever heart-beat (the sweep's list)
    bf:server:<id>             hash url, draining, legs, rooms; expires unless the server heart-beats
    bf:server:<id>:rooms       set of the room ids the server hosts
    bf:room:<id>               hash server, capacity, code, created
    bf:room:<id>:legs          set of leg ids (the Vonage call uuids)
    bf:leg:<id>                hash caller, language, room, direction, conversation
    bf:code:<code>             the room id of a room code
    bf:waiting                 list of public rooms waiting for a partner, oldest first
    bf:languages               hash sha256(number) -> remembered language

Every change that reads and writes several keys is one Lua script, so it is atomic on the Redis server: two
servers answering two callers at the same moment never pair the same waiting room twice, and only one
survivor takes over a lost server's rooms. A room lives on one server for its whole life (its audio never
crosses servers); it moves only when its server stops heart-beating. One Redis instance (or a primary with
replicas) is assumed: the scripts touch keys they build themselves, which Redis Cluster would not allow.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from babelfish.config.settings import ConfigError, Settings
from babelfish.core.rooms import RoomFull
from babelfish.transcripts.store import number_key

log = logging.getLogger(__name__)

P = "bf:"

# Place a leg: in the room of its code, else the oldest waiting public room on a live server, else a new
# room on the home server. Returns {room, server, language, outcome}; outcome "full" for a full coded room.
_PLACE = """
local p = 'bf:'
local leg, home, now, code, cap = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local known = redis.call('HGET', p..'leg:'..leg, 'room')
if known and redis.call('EXISTS', p..'room:'..known) == 1 then
  return {known, redis.call('HGET', p..'room:'..known, 'server'), redis.call('HGET', p..'leg:'..leg, 'language'),
          'again'}
end
local function up(s) return s and redis.call('EXISTS', p..'server:'..s) == 1 end
local function open(s) return up(s) and redis.call('HGET', p..'server:'..s, 'draining') ~= '1' end
local function size(r) return redis.call('SCARD', p..'room:'..r..':legs') end
local function capacity(r) return tonumber(redis.call('HGET', p..'room:'..r, 'capacity')) end
local room = nil
if code ~= '' then
  room = redis.call('GET', p..'code:'..code)
  if room and redis.call('EXISTS', p..'room:'..room) == 0 then room = nil end
  if room then
    if size(room) >= capacity(room) then return {room, '', '', 'full'} end
    local host = redis.call('HGET', p..'room:'..room, 'server')
    if not up(host) then  -- its server is gone and no survivor took it yet: the home server does
      redis.call('SREM', p..'server:'..host..':rooms', room)
      redis.call('HSET', p..'room:'..room, 'server', home)
      redis.call('SADD', p..'server:'..home..':rooms', room)
    end
  end
else
  while true do
    local r = redis.call('LPOP', p..'waiting')
    if not r then break end
    if redis.call('EXISTS', p..'room:'..r) == 1 and open(redis.call('HGET', p..'room:'..r, 'server'))
        and size(r) < capacity(r) then
      room = r
      break
    end
  end
end
if not room then
  room = (code ~= '' and ('code-'..code..'-') or 'room-')..ARGV[11]
  redis.call('HSET', p..'room:'..room, 'server', home, 'capacity', cap, 'code', code, 'created', now)
  redis.call('SADD', p..'server:'..home..':rooms', room)
  if code ~= '' then redis.call('SET', p..'code:'..code, room) end
end
local lang = ARGV[6]
if lang == '' then
  local spoken = {}
  for _, other in ipairs(redis.call('SMEMBERS', p..'room:'..room..':legs')) do
    local tag = redis.call('HGET', p..'leg:'..other, 'language')
    if tag then spoken[string.lower(string.match(tag, '^[^-_]+'))] = true end
  end
  for tag in string.gmatch(ARGV[7], '[^,]+') do
    if lang == '' and not spoken[string.lower(string.match(tag, '^[^-_]+'))] then lang = tag end
  end
  if lang == '' then lang = string.match(ARGV[7], '[^,]+') end
end
redis.call('HSET', p..'leg:'..leg, 'caller', ARGV[8], 'language', lang, 'room', room, 'direction', ARGV[9],
           'conversation', ARGV[10], 'created', now)
redis.call('SADD', p..'room:'..room..':legs', leg)
if code == '' and size(room) < capacity(room) then redis.call('RPUSH', p..'waiting', room) end
return {room, redis.call('HGET', p..'room:'..room, 'server'), lang, 'placed'}
"""

# A leg is gone: out of its room; an empty room is closed, a public room left alone waits for a partner.
# ARGV[2]: the server that thinks it hosts the leg ('' when the call itself ended): a server whose rooms were
# taken over while it was cut off from Redis must not remove the legs a survivor now hosts.
_LEAVE = """
local p = 'bf:'
local leg = ARGV[1]
local room = redis.call('HGET', p..'leg:'..leg, 'room')
if room and ARGV[2] ~= '' and redis.call('HGET', p..'room:'..room, 'server') ~= ARGV[2] then return -2 end
redis.call('DEL', p..'leg:'..leg)
if not room or redis.call('SREM', p..'room:'..room..':legs', leg) == 0 then return -1 end
local left = redis.call('SCARD', p..'room:'..room..':legs')
local code = redis.call('HGET', p..'room:'..room, 'code') or ''
if left == 0 then
  local server = redis.call('HGET', p..'room:'..room, 'server')
  if server then redis.call('SREM', p..'server:'..server..':rooms', room) end
  if code ~= '' and redis.call('GET', p..'code:'..code) == room then redis.call('DEL', p..'code:'..code) end
  redis.call('LREM', p..'waiting', 0, room)
  redis.call('DEL', p..'room:'..room)
elseif code == '' then
  redis.call('LREM', p..'waiting', 0, room)
  redis.call('RPUSH', p..'waiting', room)
end
return left
"""

# A server stopped heart-beating: the first survivor to get here takes its rooms (others get nothing).
_TAKE_OVER = """
local p = 'bf:'
local dead, me = ARGV[1], ARGV[2]
if redis.call('EXISTS', p..'server:'..dead) == 1 then return {} end
if redis.call('SREM', p..'servers', dead) == 0 then return {} end
local moved = {}
for _, room in ipairs(redis.call('SMEMBERS', p..'server:'..dead..':rooms')) do
  if redis.call('HGET', p..'room:'..room, 'server') == dead then
    redis.call('HSET', p..'room:'..room, 'server', me)
    redis.call('SADD', p..'server:'..me..':rooms', room)
    local code = redis.call('HGET', p..'room:'..room, 'code') or ''
    local cap = tonumber(redis.call('HGET', p..'room:'..room, 'capacity'))
    if code == '' and redis.call('SCARD', p..'room:'..room..':legs') < cap then
      redis.call('LREM', p..'waiting', 0, room)
      redis.call('RPUSH', p..'waiting', room)
    end
    table.insert(moved, room)
  end
end
redis.call('DEL', p..'server:'..dead..':rooms')
return moved
"""


class NoServer(Exception):
    """Every server is draining or gone: nowhere to open a room."""


@dataclass
class Placement:
    """Where the directory put a leg: its room and the server that hosts the room."""

    leg: str
    room: str
    server: str
    url: str  # the hosting server's public URL: the leg's websocket goes there
    language: str
    again: bool = False  # Vonage retried the answer webhook: the leg was placed before


@dataclass
class LegRecord:
    """A leg as the directory knows it: what its hosting server needs when its socket arrives."""

    id: str
    caller: str
    language: str
    room: str
    server: str
    capacity: int
    code: str | None
    direction: str = "inbound"
    conversation: str = ""


def default_server_id(settings: Settings) -> str:
    return f"{socket.gethostname()}-{settings.port}-{secrets.token_hex(3)}"


class Cluster:
    """This server's view of the shared directory, and its heartbeat. Needs ``public_url`` (where Vonage
    reaches this server itself, not the load balancer) and the same ``security.socket_token_secret`` on every
    server, since one server writes the NCCO and another admits its socket."""

    def __init__(self, settings: Settings) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError:
            raise ConfigError("cluster.redis_url needs the redis package: pip install 'babelfish[scale]'") from None

        cfg = settings.cluster
        if not cfg.redis_url:
            raise ConfigError("cluster.redis_url is not set")
        if not settings.public_url:
            raise ConfigError("cluster mode needs this server's own public_url (BABELFISH_PUBLIC_URL): other "
                              "servers send the websockets of the rooms it hosts there")
        if settings.security.socket_token_secret is None:
            raise ConfigError("cluster mode needs security.socket_token_secret, the same on every server: one "
                              "server issues a socket's token, another admits it")
        self.settings = settings
        self.server_id = cfg.server_id or default_server_id(settings)
        self.url = settings.public_url.rstrip("/")
        self.redis: Any = aioredis.Redis.from_url(cfg.redis_url, decode_responses=True,
                                                  socket_timeout=5, socket_connect_timeout=5)
        self._place = self.redis.register_script(_PLACE)
        self._leave = self.redis.register_script(_LEAVE)
        self._take_over = self.redis.register_script(_TAKE_OVER)
        self.draining = False
        self.load: Callable[[], tuple[int, int]] = lambda: (0, 0)  # (legs, rooms) hosted here
        self.on_take_over: Callable[[list[str]], Awaitable[None]] | None = None
        self.last_heartbeat = 0.0
        self._task: asyncio.Task[None] | None = None

    # -- membership -------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.heartbeat()
        self._task = asyncio.create_task(self._beat(), name="cluster-heartbeat")
        log.info("cluster: server %s at %s joined (redis %s)", self.server_id, self.url,
                 safe_url(self.settings.cluster.redis_url or ""))

    async def stop(self, leave: bool = True) -> None:
        """Stop heart-beating; with ``leave`` also say so at once (a drained server hosts nothing)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if leave:
            try:
                await self.redis.delete(P + "server:" + self.server_id)
            except Exception:  # noqa: BLE001 - Redis down: the key expires by itself
                log.warning("cluster: could not sign off from Redis")
        await self.redis.aclose()

    async def heartbeat(self) -> None:
        cfg = self.settings.cluster
        legs, rooms = self.load()
        key = P + "server:" + self.server_id
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"url": self.url, "draining": "1" if self.draining else "0", "legs": legs,
                                    "rooms": rooms, "at": time.time()})
            pipe.pexpire(key, int(cfg.server_ttl_s * 1000))
            pipe.sadd(P + "servers", self.server_id)
            await pipe.execute()
        self.last_heartbeat = time.monotonic()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.cluster.heartbeat_s)
            try:
                await self.heartbeat()
                if not self.draining:
                    await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis unreachable for a moment: the next beat retries
                log.exception("cluster heartbeat failed")

    async def set_draining(self) -> None:
        """Take no new rooms: others stop placing callers here; live rooms stay."""
        self.draining = True
        await self.heartbeat()

    async def servers(self) -> list[dict[str, Any]]:
        """The live servers, with their URL, load and whether they drain."""
        out = []
        for server_id in sorted(await self.redis.smembers(P + "servers")):
            info = await self.redis.hgetall(P + "server:" + server_id)
            if info:
                out.append({"id": server_id, "url": info.get("url"), "draining": info.get("draining") == "1",
                            "legs": int(info.get("legs", 0)), "rooms": int(info.get("rooms", 0))})
        return out

    async def home(self) -> str:
        """The server a new room opens on: this one, unless it drains (then the least loaded live one)."""
        if not self.draining:
            return self.server_id
        live = [s for s in await self.servers() if not s["draining"] and s["id"] != self.server_id]
        if not live:
            raise NoServer("every server is draining")
        return min(live, key=lambda s: (s["legs"], s["id"]))["id"]

    async def sweep(self) -> list[str]:
        """Take over the rooms of servers that stopped heart-beating; returns the room ids taken."""
        taken: list[str] = []
        for server_id in await self.redis.smembers(P + "servers"):
            if server_id == self.server_id or await self.redis.exists(P + "server:" + server_id):
                continue
            rooms = await self._take_over(args=[server_id, self.server_id])
            if rooms:
                log.warning("cluster: server %s is gone; %d rooms move here", server_id, len(rooms))
                taken += rooms
        if taken and self.on_take_over is not None:
            await self.on_take_over(taken)
        return taken

    # -- placement --------------------------------------------------------------------------------------

    async def place(self, leg_id: str, caller: str, *, language: str | None, code: str | None,
                    direction: str = "inbound", conversation: str = "") -> Placement:
        """Put a new leg in a room (see the module docstring); raises :class:`RoomFull` for a full coded room
        and :class:`NoServer` when no server takes new rooms."""
        settings = self.settings
        capacity = settings.rooms.conference_size if code else 2
        home = await self.home()
        room, server, lang, outcome = await self._place(args=[
            leg_id, home, time.time(), code or "", capacity, language or "", ",".join(settings.default_languages),
            caller, direction, conversation, f"{secrets.token_hex(6)}"])
        if outcome == "full":
            raise RoomFull(code)
        url = self.url if server == self.server_id else await self.redis.hget(P + "server:" + server, "url")
        if not url:
            raise NoServer(f"room {room}'s server {server} is gone")
        log.info("cluster: leg %s placed in %s on %s%s", leg_id, room, server, " (again)" if outcome == "again" else "")
        return Placement(leg_id, room, server, url, lang, again=outcome == "again")

    async def leg(self, leg_id: str) -> LegRecord | None:
        """The directory's record of a leg, with its room (None when unknown or ended)."""
        fields = await self.redis.hgetall(P + "leg:" + leg_id)
        if not fields:
            return None
        room = await self.redis.hgetall(P + "room:" + fields["room"])
        if not room:
            return None
        return LegRecord(id=leg_id, caller=fields.get("caller", ""), language=fields["language"],
                         room=fields["room"], server=room.get("server", ""), capacity=int(room.get("capacity", 2)),
                         code=room.get("code") or None, direction=fields.get("direction", "inbound"),
                         conversation=fields.get("conversation", ""))

    async def set_language(self, leg_id: str, language: str) -> None:
        """The leg was switched to the language its caller speaks (``languages.detect``): a server that
        takes its room over, and the placement of the room's next caller, see the new one."""
        await self.redis.eval("if redis.call('EXISTS', KEYS[1]) == 1 then "
                              "redis.call('HSET', KEYS[1], 'language', ARGV[1]) end", 1, P + "leg:" + leg_id, language)

    async def room_legs(self, room_id: str) -> list[LegRecord]:
        records = [await self.leg(leg_id) for leg_id in await self.redis.smembers(P + "room:" + room_id + ":legs")]
        return [r for r in records if r is not None]

    async def leave(self, leg_id: str, *, hosted_here: bool = False) -> None:
        """Take a leg off the directory: the call ended (any server may say so), or, with ``hosted_here``,
        this server ended it (ignored if its room has meanwhile moved to another server)."""
        await self._leave(args=[leg_id, self.server_id if hosted_here else ""])

    # -- remembered languages ---------------------------------------------------------------------------

    async def remember_language(self, number: str, language: str) -> None:
        await self.redis.hset(P + "languages", number_key(number), language)

    async def remembered_language(self, number: str) -> str | None:
        return await self.redis.hget(P + "languages", number_key(number))

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:  # noqa: BLE001 - readiness reports it
            return False


def safe_url(url: str) -> str:
    """The Redis URL without its password, for logs."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
