"""Consent: request, grant, refuse, revoke, expiry; the history and the audit log; the scope sees exactly the
enterprises with a consent in force."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from portal import audit
from portal.auth import load_user
from portal.evidence import consent
from portal.scope import scope_for
from tests.evidence.conftest import NOW, build

LATER = NOW + pd.Timedelta(days=90)


@pytest.fixture
def fresh(tmp_path):
    c = build(tmp_path)
    yield c
    c.store.close()


def ask(ctx, bank="bank", enterprise="E1", **kw):
    args = {"purpose": "loan_application", "data": ["energy", "emissions"], "period_from": "2024-01",
            "period_to": "2024-03", "expires_at": LATER, "now": NOW, **kw}
    return consent.request(ctx.engine, "p", bank, enterprise, **args)


def actions(ctx) -> list[str]:
    return list(audit.events(ctx.engine, 1000)["action"])[::-1]


def test_request_grant_revoke_each_in_history_and_audit_log(fresh):
    c = ask(fresh)
    assert c.state == "requested" and not c.in_force(NOW.to_pydatetime())
    consent.grant(fresh.engine, c.id, "alpha", now=NOW)
    assert consent.get(fresh.engine, c.id).in_force(NOW.to_pydatetime())
    consent.record_export(fresh.engine, consent.get(fresh.engine, c.id), "bank", "pack 2024-01", now=NOW)
    consent.revoke(fresh.engine, c.id, "bank", now=NOW, reason="loan repaid")
    assert consent.get(fresh.engine, c.id).state == "revoked"
    assert list(consent.history(fresh.engine, c.id)["action"]) == ["request", "grant", "export", "revoke"]
    log = [a for a in actions(fresh) if a.startswith("consent_")]
    assert log == ["consent_request", "consent_grant", "consent_export", "consent_revoke"]
    detail = json.loads(audit.events(fresh.engine, 1)["detail"].iloc[0])
    assert detail["reason"] == "loan repaid" and detail["enterprise"] == "E1"


def test_refusal_is_final_and_logged(fresh):
    c = ask(fresh)
    consent.refuse(fresh.engine, c.id, "alpha", now=NOW, reason="no loan with you")
    with pytest.raises(consent.ConsentError, match="is refused"):
        consent.grant(fresh.engine, c.id, "alpha", now=NOW)
    assert "consent_refuse" in actions(fresh)


def test_only_the_enterprise_grants_and_only_the_parties_revoke(fresh):
    c = ask(fresh)
    for intruder in ("beta", "bank", "bank2", "reg"):
        with pytest.raises(consent.ConsentError, match="may not grant"):
            consent.grant(fresh.engine, c.id, intruder, now=NOW)
    consent.grant(fresh.engine, c.id, "alpha", now=NOW)
    for intruder in ("beta", "bank2", "reg"):
        with pytest.raises(consent.ConsentError, match="may not revoke"):
            consent.revoke(fresh.engine, c.id, intruder, now=NOW)
    consent.revoke(fresh.engine, c.id, "alpha", now=NOW)


def test_bad_requests_are_refused_with_the_reason(fresh):
    with pytest.raises(consent.ConsentError, match="purpose"):
        ask(fresh, purpose="curiosity")
    with pytest.raises(consent.ConsentError, match="data"):
        ask(fresh, data=["passwords"])
    with pytest.raises(consent.ConsentError, match="ends .* before it starts"):
        ask(fresh, period_from="2024-05", period_to="2024-01")
    with pytest.raises(consent.ConsentError, match="not in the future"):
        ask(fresh, expires_at=NOW - pd.Timedelta(days=1))
    with pytest.raises(consent.ConsentError, match="not a bank"):
        ask(fresh, bank="alpha")
    with pytest.raises(consent.ConsentError, match="no enterprise"):
        ask(fresh, enterprise="E9")


def test_the_scope_of_a_bank_is_exactly_its_consents_in_force(fresh):
    bank = load_user(fresh.engine, "bank")
    assert scope_for(fresh, bank).consents == frozenset()
    c = ask(fresh)
    assert scope_for(fresh, bank).enterprise_ids == frozenset()  # requested is not granted
    consent.grant(fresh.engine, c.id, "alpha", now=NOW)
    s = scope_for(fresh, bank)
    assert s.consents == frozenset({"E1"}) and [e.id for e in s.enterprises()] == ["E1"]
    assert scope_for(fresh, load_user(fresh.engine, "bank2")).enterprise_ids == frozenset()  # another bank
    consent.revoke(fresh.engine, c.id, "alpha", now=NOW)
    assert scope_for(fresh, bank).enterprise_ids == frozenset()


def test_an_expired_consent_is_not_in_force(fresh):
    c = ask(fresh, expires_at=NOW + pd.Timedelta(hours=1))
    consent.grant(fresh.engine, c.id, "alpha", now=NOW)
    assert consent.in_force(fresh.engine, "bank", NOW) != []
    later = NOW + pd.Timedelta(hours=1)
    assert consent.in_force(fresh.engine, "bank", later) == []
    assert consent.get(fresh.engine, c.id).status(later.to_pydatetime()) == "expired"
    fresh.clock = lambda: later  # the portal's clock moves past the expiry
    assert scope_for(fresh, load_user(fresh.engine, "bank")).enterprise_ids == frozenset()


def test_covering_checks_enterprise_months_and_data(fresh):
    c = ask(fresh)
    consent.grant(fresh.engine, c.id, "alpha", now=NOW)
    months = [pd.Timestamp(f"2024-{m:02d}-01").date() for m in (1, 2, 3)]
    assert consent.covering(fresh.engine, "bank", "E1", months, "emissions", now=NOW).id == c.id
    with pytest.raises(consent.NoConsent, match="2024-01 – 2024-04"):
        consent.covering(fresh.engine, "bank", "E1", [*months, pd.Timestamp("2024-04-01").date()], now=NOW)
    with pytest.raises(consent.NoConsent):
        consent.covering(fresh.engine, "bank", "E1", months, "utilisation", now=NOW)
    with pytest.raises(consent.NoConsent):
        consent.covering(fresh.engine, "bank", "E2", months, now=NOW)
