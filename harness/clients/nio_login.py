"""Drive a homeserver with matrix-nio, a real Python client library.

    python nio_login.py BASE_URL USERNAME PASSWORD

Registers USERNAME (nio's dummy-auth flow), logs in with the password on a second
client, checks whoami, sets and reads back a display name, logs out and checks the
token is dead. Prints one JSON line: {"ok": true, ...results} on success, or
{"ok": false, "step": ..., "error": ...} and exits 1 on the first error response.
"""

import asyncio
import json
import sys

from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    LoginResponse,
    LogoutResponse,
    ProfileGetDisplayNameResponse,
    ProfileSetDisplayNameResponse,
    RegisterResponse,
    WhoamiError,
    WhoamiResponse,
)

DISPLAY_NAME = "Nio Tester ✓ 🐍"


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


def config() -> AsyncClientConfig:
    # No retries: a 429 or a timeout is a failure here, not something to wait out.
    return AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0, request_timeout=30)


async def run(base_url: str, username: str, password: str) -> dict:
    out: dict = {}
    registrar = AsyncClient(base_url, username, config=config())
    client = AsyncClient(base_url, username, config=config())
    probe = AsyncClient(base_url, config=config())
    try:
        reg = expect(
            "register",
            await registrar.register(username, password, device_name="nio register"),
            RegisterResponse,
        )
        out["register"] = {"user_id": reg.user_id, "device_id": reg.device_id}
        if not reg.access_token:
            raise StepFailed("register", "no access_token")

        login = expect(
            "login",
            await client.login(password, device_name="nio login"),
            LoginResponse,
        )
        out["login"] = {"user_id": login.user_id, "device_id": login.device_id}
        if login.user_id != reg.user_id:
            raise StepFailed("login", f"user_id {login.user_id} != registered {reg.user_id}")
        if login.device_id == reg.device_id:
            raise StepFailed("login", f"login reused the registration device {reg.device_id}")

        who = expect("whoami", await client.whoami(), WhoamiResponse)
        out["whoami"] = {"user_id": who.user_id, "device_id": who.device_id, "is_guest": who.is_guest}
        if (who.user_id, who.device_id) != (login.user_id, login.device_id):
            raise StepFailed("whoami", f"{who.user_id}/{who.device_id} is not the logged-in device")

        expect(
            "set_displayname",
            await client.set_displayname(DISPLAY_NAME),
            ProfileSetDisplayNameResponse,
        )
        got = expect(
            "get_displayname", await client.get_displayname(), ProfileGetDisplayNameResponse
        )
        out["displayname"] = got.displayname
        if got.displayname != DISPLAY_NAME:
            raise StepFailed("get_displayname", f"{got.displayname!r} != {DISPLAY_NAME!r}")

        token = client.access_token
        expect("logout", await client.logout(), LogoutResponse)
        out["logout"] = True

        # The logged-out token must be refused; the registration token still works.
        probe.restore_login(login.user_id, login.device_id, token)
        dead = await probe.whoami()
        if not isinstance(dead, WhoamiError):
            raise StepFailed("whoami after logout", f"token still accepted: {dead}")
        out["after_logout"] = dead.status_code
        expect("whoami with registration token", await registrar.whoami(), WhoamiResponse)
    finally:
        for c in (registrar, client, probe):
            await c.close()
    return out


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    base_url, username, password = sys.argv[1:]
    try:
        out = asyncio.run(run(base_url, username, password))
    except StepFailed as e:
        print(json.dumps({"ok": False, "step": e.step, "error": e.error}))
        return 1
    print(json.dumps({"ok": True, **out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
