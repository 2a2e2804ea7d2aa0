"""A bridge built on mautrix-python (the library of the mautrix-* bridges) against Glia.

The appservice listens for Glia's transactions, registers a puppet for a user of a
pretend remote network, joins the room, relays the remote user's message into it, then
waits for a Matrix user's message in that room and "relays it back" by printing it as
the last line of JSON: {"relayed": body, "sender": ..., "event_id": ...}.

argv: homeserver_url domain as_token hs_token port room_id timeout_seconds
"""

import asyncio
import json
import sys

from mautrix.appservice import AppService
from mautrix.types import EventType, RoomID, UserID


async def main() -> None:
    hs, domain, as_token, hs_token, port, room_id, timeout = sys.argv[1:8]
    loop = asyncio.get_running_loop()
    from_matrix: asyncio.Future = loop.create_future()
    az = AppService(
        server=hs,
        domain=domain,
        as_token=as_token,
        hs_token=hs_token,
        bot_localpart="bridge-bot",
        id="bridge",
    )

    async def on_event(evt) -> None:
        if (
            evt.type == EventType.ROOM_MESSAGE
            and evt.room_id == room_id
            and not evt.sender.startswith("@bridge_")
            and not from_matrix.done()
        ):
            from_matrix.set_result(evt)

    az.matrix_event_handler(on_event)
    await az.start(host="127.0.0.1", port=int(port))
    try:
        puppet = az.intent.user(UserID(f"@bridge_puppet:{domain}"))
        await puppet.ensure_registered()
        await puppet.set_displayname("Remote Puppet")
        await puppet.join_room(RoomID(room_id))
        sent = await puppet.send_text(RoomID(room_id), "hello from the remote network")
        print(json.dumps({"sent": sent}), flush=True)
        evt = await asyncio.wait_for(from_matrix, timeout=float(timeout))
        print(json.dumps({
            "relayed": evt.content.body,
            "sender": evt.sender,
            "event_id": evt.event_id,
        }), flush=True)
    finally:
        await az.stop()


asyncio.run(main())
