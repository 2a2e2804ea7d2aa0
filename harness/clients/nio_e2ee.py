"""Two matrix-nio users exchange end-to-end encrypted messages through a homeserver.

    python nio_e2ee.py BASE_URL ALICE_LOCALPART BOB_LOCALPART PASSWORD

matrix-nio with its `e2e` extra (vodozemac) does all the cryptography; the server only
stores and relays keys, to-device messages and ciphertext. Steps:

1. alice and bob register (m.login.dummy), then each logs in on a new device with its
   own crypto store (a temporary directory) and uploads device and one-time keys;
2. alice creates a room with `m.room.encryption` (megolm) in its initial state, inviting
   bob; bob sees the invite in /sync and joins;
3. both sync until each sees the other joined and holds the other's device keys
   (`/keys/query`, driven by `device_lists` in /sync), then mark each other's devices
   verified (programmatically: no interactive verification);
4. alice sends an encrypted text: nio claims one of bob's one-time keys, sends him the
   megolm room key over an Olm-encrypted to-device message, and sends the
   `m.room.encrypted` event; bob syncs until the event decrypts to `m.room.message`
   with the right body;
5. bob replies the same way and alice decrypts the reply.

Every wait is a bounded number of /sync calls with a short server timeout, and the whole
run has a deadline. Prints one JSON line: {"ok": true, ...results} on success, or
{"ok": false, "step": ..., "error": ..., ...results so far} and exits 1 on the first
failure.
"""

import asyncio
import json
import sys
import tempfile
from urllib.parse import quote

import aiohttp

from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    JoinResponse,
    KeysClaimResponse,
    KeysQueryResponse,
    KeysUploadResponse,
    LoginResponse,
    MegolmEvent,
    RegisterResponse,
    RoomCreateResponse,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)
from nio.crypto import ENCRYPTION_ENABLED

# Bounds: every /sync waits at most SYNC_TIMEOUT_MS on the server, and a wait gives up
# after SYNC_ROUNDS of them. The whole run must end within RUN_DEADLINE_S.
SYNC_TIMEOUT_MS = 1000
SYNC_ROUNDS = 30
RUN_DEADLINE_S = 150

MEGOLM = "m.megolm.v1.aes-sha2"
ALICE_TEXT = "Hello Bob, this is secret 🔐"
BOB_TEXT = "Hi Alice, I read you: secret received ✓"


class StepFailed(Exception):
    def __init__(self, step: str, error: str):
        super().__init__(f"{step}: {error}")
        self.step = step
        self.error = error


def expect(step: str, resp, cls):
    """Return resp if it is a cls, else fail the step with the server's answer."""
    if isinstance(resp, cls):
        return resp
    status = getattr(getattr(resp, "transport_response", None), "status", None)
    if isinstance(resp, ErrorResponse):
        error = f"HTTP {status} {resp.status_code}: {resp.message}"
    else:
        error = f"HTTP {status}: unexpected {type(resp).__name__}: {resp}"
    raise StepFailed(step, error)


def config(encryption: bool) -> AsyncClientConfig:
    # No retries: a 429 or a timeout is a failure here, not something to wait out.
    return AsyncClientConfig(
        max_limit_exceeded=0,
        max_timeouts=0,
        request_timeout=30,
        encryption_enabled=encryption,
        store_sync_tokens=True,
    )


class User:
    """One person: a logged-in, encryption-enabled client and what its syncs delivered."""

    def __init__(self, name: str, base_url: str, localpart: str, password: str, store: str):
        self.name = name
        self.base_url = base_url
        self.localpart = localpart
        self.password = password
        self.client = AsyncClient(base_url, localpart, store_path=store, config=config(True))
        # (room ID, event) for the timeline events of every sync, as nio left them
        # (decrypted where it could).
        self.timeline: list[tuple[str, object]] = []
        self.to_device_types: list[str] = []
        self.device_list_changes: set[str] = set()
        self.syncs = 0

    @property
    def user_id(self) -> str:
        return self.client.user_id

    async def register_and_login(self) -> dict:
        registrar = AsyncClient(self.base_url, self.localpart, config=config(False))
        try:
            reg = expect(
                f"{self.name} register",
                await registrar.register(self.localpart, self.password, device_name="registrar"),
                RegisterResponse,
            )
        finally:
            await registrar.close()
        login = expect(
            f"{self.name} login",
            await self.client.login(self.password, device_name=f"nio e2ee {self.name}"),
            LoginResponse,
        )
        if login.user_id != reg.user_id:
            raise StepFailed(f"{self.name} login", f"{login.user_id} != {reg.user_id}")
        if self.client.olm is None:
            raise StepFailed(f"{self.name} login", "nio did not load its Olm machine")
        return {"user_id": login.user_id, "device_id": login.device_id}

    async def upload_keys(self) -> dict:
        if not self.client.should_upload_keys:
            raise StepFailed(f"{self.name} keys_upload", "nio has no keys to upload")
        up = expect(
            f"{self.name} keys_upload", await self.client.keys_upload(), KeysUploadResponse
        )
        if not up.signed_curve25519_count:
            raise StepFailed(
                f"{self.name} keys_upload", f"no signed_curve25519 count in the answer: {up}"
            )
        return {"signed_curve25519": up.signed_curve25519_count}

    async def sync_once(self, step: str) -> SyncResponse:
        resp = expect(
            step,
            await self.client.sync(timeout=SYNC_TIMEOUT_MS, full_state=False),
            SyncResponse,
        )
        self.syncs += 1
        for event in resp.to_device_events:
            self.to_device_types.append(type(event).__name__)
        self.device_list_changes.update(resp.device_list.changed)
        for room_id, info in resp.rooms.join.items():
            self.timeline.extend((room_id, e) for e in info.timeline.events)
        # What sync_forever would do between syncs: keep keys and Olm sessions current.
        if self.client.should_upload_keys:
            expect(f"{step}: keys_upload", await self.client.keys_upload(), KeysUploadResponse)
        if self.client.should_query_keys:
            expect(f"{step}: keys_query", await self.client.keys_query(), KeysQueryResponse)
        if self.client.should_claim_keys:
            expect(
                f"{step}: keys_claim",
                await self.client.keys_claim(self.client.get_users_for_key_claiming()),
                KeysClaimResponse,
            )
        return resp

    async def sync_until(self, step: str, done, what: str):
        """Sync until done() is truthy; at most SYNC_ROUNDS syncs."""
        for _ in range(SYNC_ROUNDS):
            await self.sync_once(step)
            value = done()
            if value:
                return value
        raise StepFailed(step, f"{what}: not after {SYNC_ROUNDS} syncs")

    def devices_of(self, user_id: str) -> list:
        return list(self.client.device_store.active_user_devices(user_id))

    def trust(self, other: "User") -> list[str]:
        """Mark every device of other as verified (what a completed SAS would do)."""
        ids = []
        for device in self.devices_of(other.user_id):
            self.client.verify_device(device)
            ids.append(device.id)
        return ids

    def find_text(self, room_id: str, sender: str, body: str):
        """The decrypted message, retrying the decryption of megolm events still locked."""
        for i, (rid, event) in enumerate(self.timeline):
            if rid != room_id or event.sender != sender:
                continue
            if isinstance(event, MegolmEvent):
                try:
                    event = self.client.decrypt_event(event)
                    self.timeline[i] = (rid, event)
                except Exception:  # the key has not arrived yet
                    continue
            if isinstance(event, RoomMessageText) and event.body == body:
                return event
        return None

    def undecrypted(self, room_id: str, sender: str) -> list[str]:
        return [
            f"{e.event_id} (session {e.session_id})"
            for rid, e in self.timeline
            if rid == room_id and isinstance(e, MegolmEvent) and e.sender == sender
        ]

    async def close(self):
        await self.client.close()


async def raw_event(user: User, room_id: str, event_id: str) -> dict:
    """The event as the server serves it, without nio's decryption."""
    path = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/event/{quote(event_id, safe='')}"
    headers = {"Authorization": f"Bearer {user.client.access_token}"}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(user.base_url + path, headers=headers) as resp:
            body = await resp.text()
            if resp.status != 200:
                raise StepFailed(f"{user.name} GET /event", f"HTTP {resp.status}: {body}")
            return json.loads(body)


async def send_and_receive(
    step: str, sender: User, receiver: User, room_id: str, text: str
) -> dict:
    sent = expect(
        f"{step}: {sender.name} room_send",
        await sender.client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": text}
        ),
        RoomSendResponse,
    )
    # The server must hold ciphertext only. (nio's room_get_event would decrypt it.)
    raw = await raw_event(sender, room_id, sent.event_id)
    if raw.get("type") != "m.room.encrypted":
        raise StepFailed(step, f"the stored event is {raw.get('type')}, not m.room.encrypted")
    leaked = text in json.dumps(raw, ensure_ascii=False)
    if raw.get("content", {}).get("algorithm") != MEGOLM or leaked:
        raise StepFailed(step, f"the stored event is not megolm ciphertext: {raw}")

    try:
        got = await receiver.sync_until(
            f"{step}: {receiver.name} decrypts",
            lambda: receiver.find_text(room_id, sender.user_id, text),
            f"{receiver.name} never decrypted {sent.event_id}",
        )
    except StepFailed as e:
        locked = receiver.undecrypted(room_id, sender.user_id)
        raise StepFailed(
            e.step,
            f"{e.error}; still undecrypted: {locked or 'none (event not seen at all)'}; "
            f"to-device events seen: {receiver.to_device_types}",
        )
    if got.event_id != sent.event_id:
        raise StepFailed(step, f"decrypted {got.event_id}, sent {sent.event_id}")
    return {
        "event_id": sent.event_id,
        "decrypted_body": got.body,
        "decrypted_type": got.source.get("type"),
        "server_type": raw["type"],
        "session_id": raw["content"].get("session_id"),
        "decrypted": got.decrypted,
        "verified": got.verified,
    }


async def run(base_url: str, alice_lp: str, bob_lp: str, password: str, out: dict) -> None:
    if not ENCRYPTION_ENABLED:
        raise StepFailed("setup", "matrix-nio has no encryption support: install matrix-nio[e2e]")
    with tempfile.TemporaryDirectory(prefix="nio-alice-") as a_store, tempfile.TemporaryDirectory(
        prefix="nio-bob-"
    ) as b_store:
        alice = User("alice", base_url, alice_lp, password, a_store)
        bob = User("bob", base_url, bob_lp, password, b_store)
        try:
            out["alice"] = await alice.register_and_login()
            out["bob"] = await bob.register_and_login()
            out["alice"]["otk_counts"] = await alice.upload_keys()
            out["bob"]["otk_counts"] = await bob.upload_keys()

            created = expect(
                "room_create",
                await alice.client.room_create(
                    name="nio e2ee",
                    invite=[bob.user_id],
                    initial_state=[
                        {
                            "type": "m.room.encryption",
                            "state_key": "",
                            "content": {"algorithm": MEGOLM},
                        }
                    ],
                ),
                RoomCreateResponse,
            )
            room_id = created.room_id
            out["room_id"] = room_id

            def encrypted_room(user: User):
                room = user.client.rooms.get(room_id)
                return room if room is not None and room.encrypted else None

            await alice.sync_until(
                "alice sees her encrypted room",
                lambda: encrypted_room(alice),
                "room missing from alice's sync or not encrypted",
            )
            await bob.sync_until(
                "bob sees the invite",
                lambda: room_id in bob.client.invited_rooms,
                "no invite in bob's sync",
            )
            expect("bob join", await bob.client.join(room_id), JoinResponse)
            def bob_joined():
                room = encrypted_room(bob)
                return room is not None and alice.user_id in room.users

            await bob.sync_until(
                "bob sees the joined encrypted room",
                bob_joined,
                "room missing from bob's sync, not encrypted, or alice not a member",
            )
            await alice.sync_until(
                "alice sees bob join",
                lambda: bob.user_id in alice.client.rooms[room_id].users
                and bob.user_id not in alice.client.rooms[room_id].invited_users,
                "bob's join missing from alice's sync",
            )

            # Each must learn the other's device keys through device_lists + /keys/query.
            await alice.sync_until(
                "alice fetches bob's device keys",
                lambda: alice.devices_of(bob.user_id),
                "bob's devices never reached alice's device store",
            )
            await bob.sync_until(
                "bob fetches alice's device keys",
                lambda: bob.devices_of(alice.user_id),
                "alice's devices never reached bob's device store",
            )
            out["alice"]["trusted"] = alice.trust(bob)
            out["bob"]["trusted"] = bob.trust(alice)
            if out["alice"]["trusted"] != [out["bob"]["device_id"]]:
                raise StepFailed("trust", f"alice sees bob's devices {out['alice']['trusted']}")
            if out["bob"]["trusted"] != [out["alice"]["device_id"]]:
                raise StepFailed("trust", f"bob sees alice's devices {out['bob']['trusted']}")

            out["alice_to_bob"] = await send_and_receive(
                "alice -> bob", alice, bob, room_id, ALICE_TEXT
            )
            out["bob_to_alice"] = await send_and_receive(
                "bob -> alice", bob, alice, room_id, BOB_TEXT
            )
            if out["alice_to_bob"]["session_id"] == out["bob_to_alice"]["session_id"]:
                raise StepFailed("sessions", "alice and bob used the same megolm session")
        finally:
            for u in (alice, bob):
                out.setdefault("syncs", {})[u.name] = u.syncs
                out.setdefault("to_device", {})[u.name] = u.to_device_types
                out.setdefault("device_list_changed", {})[u.name] = sorted(u.device_list_changes)
                await u.close()


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    base_url, alice_lp, bob_lp, password = sys.argv[1:]
    out: dict = {}

    def report(ok: bool, **fields) -> None:
        print(json.dumps({"ok": ok, **fields, **out}, ensure_ascii=False))

    try:
        asyncio.run(
            asyncio.wait_for(run(base_url, alice_lp, bob_lp, password, out), RUN_DEADLINE_S)
        )
    except StepFailed as e:
        report(False, step=e.step, error=e.error)
        return 1
    except (asyncio.TimeoutError, TimeoutError):
        report(False, step="deadline", error=f"not done within {RUN_DEADLINE_S} s")
        return 1
    except Exception as e:  # report anything else as one JSON line too, then the traceback
        report(False, step="exception", error=f"{type(e).__name__}: {e}")
        raise
    report(True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
