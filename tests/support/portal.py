"""Driving the portal's Flask test client as a browser would: log in, then post Dash callbacks with the CSRF
header (shared by the portal tests and bench/portal.py)."""

from __future__ import annotations

SHELL_OUTPUTS = ("app-title", "park-name", "user-name", "lang-toggle", "logout", "nav", "page")


def login(client, username: str, password: str):
    """Post the login form with its session token; the response (a redirect when it worked)."""
    client.get("/login")
    with client.session_transaction() as s:
        token = s["login_csrf"]
    return client.post("/login", data={"username": username, "password": password, "csrf": token})


def session_csrf(client) -> str:
    """The token Dash callbacks must carry in X-CSRFToken."""
    with client.session_transaction() as s:
        return s["csrf"]


def login_token(client, username: str, password: str) -> str:
    login(client, username, password)
    return session_csrf(client)


def render_body(pathname: str, lang: str = "en") -> dict:
    """The shell's render callback for a path, as the Dash renderer posts it."""
    return {"output": ".." + "...".join(f"{i}.children" for i in SHELL_OUTPUTS) + "..",
            "outputs": [{"id": i, "property": "children"} for i in SHELL_OUTPUTS],
            "inputs": [{"id": "url", "property": "pathname", "value": pathname},
                       {"id": "lang", "property": "data", "value": lang}],
            "changedPropIds": ["url.pathname"], "state": []}


def callback_body(outputs: list[str], inputs: dict, state: dict | None = None) -> dict:
    """A Dash callback request: outputs 'id.prop', inputs and state {'id.prop': value}."""
    def ref(key: str, *value) -> dict:
        i, prop = key.rsplit(".", 1)
        return {"id": i, "property": prop, **({"value": value[0]} if value else {})}

    many = len(outputs) > 1
    return {"output": ".." + "...".join(outputs) + ".." if many else outputs[0],
            "outputs": [ref(o) for o in outputs] if many else ref(outputs[0]),
            "inputs": [ref(k, v) for k, v in inputs.items()],
            "state": [ref(k, v) for k, v in (state or {}).items()],
            "changedPropIds": [next(iter(inputs))]}
