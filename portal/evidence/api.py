"""The bank API and the published keys, as Flask routes on the portal's server (registered by portal/web.py).

* `GET /api/v1/evidence`: the calling bank's consents in force (JSON).
* `GET /api/v1/evidence/<enterprise>/<period>`: the signed pack, built now under the bank's consent in force.
  Authenticated by `Authorization: Bearer <token>` (portal/evidence/tokens.py), never by a portal session; 401
  without a valid token, 403 without a consent covering the enterprise and every month of the period.
* `GET /evidence/public/keys.json` and `/evidence/public/<key id>.pem`: the park's public keys, open to anyone.

These paths are open in the login guard (portal.web.OPEN_PREFIXES): the token, not a session, is what counts here.
"""

from __future__ import annotations

import re

from flask import Flask, Response, abort, jsonify, request

from park.settings import SettingsError
from portal import audit
from portal.auth import Role, load_user
from portal.evidence import consent, keys, pack, tokens

API = "/api/v1/evidence"
PUBLIC = "/evidence/public"
SETTINGS = {"public_url"}  # [evidence] keys
_KEY_ID = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def evidence_settings(settings) -> dict:
    """The [evidence] settings section, checked: `public_url` (the portal's address as banks see it, put in the
    packs' instructions).  Unknown keys -> SettingsError naming the file, the key and what is allowed."""
    section = dict(settings.evidence or {})
    unknown = set(section) - SETTINGS
    if unknown:
        raise SettingsError(f"{settings.source}: unknown key(s) {', '.join(sorted(unknown))} in [evidence]; "
                            f"allowed: {', '.join(sorted(SETTINGS))}")
    return section


def public_keys_url(settings, host_url: str | None = None) -> str:
    base = evidence_settings(settings).get("public_url") or host_url
    return (base.rstrip("/") if base else "") + keys.PUBLIC_KEYS_PATH


def register_routes(server: Flask, ctx) -> None:
    """Add the API and the published keys to the portal's Flask server."""
    evidence_settings(ctx.settings)

    def bank_user():
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else None
        bank = tokens.bank_of(ctx.engine, token)
        user = load_user(ctx.engine, bank) if bank else None
        if user is None or user.role is not Role.BANK:
            audit.record(ctx.engine, bank or "?", "refused", request.path[:200], reason="API: no valid token",
                         ip=request.remote_addr)
            resp = jsonify(error="a valid bank API token is needed (Authorization: Bearer ...)")
            resp.status_code = 401
            resp.headers["WWW-Authenticate"] = 'Bearer realm="parkcarbon-evidence"'
            abort(resp)
        return user

    @server.route(API, methods=["GET"])
    def evidence_consents():
        user = bank_user()
        now = ctx.now()
        return jsonify(consents=[{"id": c.id, "enterprise": c.enterprise, "purpose": c.purpose, "data": list(c.data),
                                  "from": f"{c.period_from:%Y-%m}", "to": f"{c.period_to:%Y-%m}",
                                  "expires_at": c.expires_at.isoformat()}
                                 for c in consent.in_force(ctx.engine, user.username, now)])

    @server.route(f"{API}/<enterprise>/<period>", methods=["GET"])
    def evidence_pack(enterprise: str, period: str):
        from portal.scope import scope_for

        user = bank_user()
        if not _ID.fullmatch(enterprise):
            return jsonify(error="unknown enterprise"), 404
        scope = scope_for(ctx, user, API)
        try:
            blob, manifest = pack.issue(ctx, scope, enterprise, period,
                                        public_keys_url=public_keys_url(ctx.settings, request.host_url))
        except consent.NoConsent as exc:
            return jsonify(error=f"no consent in force: {exc}"), 403
        except pack.PackError as exc:
            return jsonify(error=str(exc)), 400
        name = pack.pack_name(ctx.park.id, enterprise, manifest["period"]["label"])
        return Response(blob, mimetype="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})

    @server.route(f"{PUBLIC}/keys.json", methods=["GET"])
    def public_keys():
        return Response(keys.published_json(ctx.engine, ctx.park.id), mimetype="application/json")

    @server.route(f"{PUBLIC}/<key_id>.pem", methods=["GET"])
    def public_key(key_id: str):
        if not _KEY_ID.fullmatch(key_id):
            abort(404)
        found = next((k for k in keys.published(ctx.engine, ctx.park.id) if k["key_id"] == key_id), None)
        if found is None:
            abort(404)
        return Response(found["public_key_pem"], mimetype="application/x-pem-file")
