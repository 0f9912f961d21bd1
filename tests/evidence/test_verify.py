"""Verification: a genuine pack verifies (our command and the openssl + sha256sum path of README.txt); any byte of any
file changed, two files swapped, a file dropped or added, the manifest edited, the wrong key or a revoked one:
each fails with a precise message, by our command and by the openssl path."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.cli import main
from portal.evidence import keys
from portal.evidence.verify import verify


def members(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return {n: z.read(n) for n in z.namelist()}


def rezip(files: dict[str, bytes], extra: list[tuple[str, bytes]] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
        for n, b in extra:
            z.writestr(n, b)
    return buf.getvalue()


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


@pytest.fixture(scope="module")
def park_key(granted) -> bytes:
    return next(k for k in keys.published(granted.engine, "p") if k["status"] == "active")["public_key_pem"].encode()


@pytest.fixture(scope="module")
def pack_files(pack_blob, park_key) -> Quiet:
    return Quiet(files=members(pack_blob), key=park_key)


def codes(res) -> set[str]:
    return {p.code for p in res.problems}


# ---- our command ------------------------------------------------------------------------------------------------
def test_a_genuine_pack_verifies_and_every_figure_recomputes(pack_blob, park_key):
    res = verify(pack_blob, key_pem=park_key, recompute=True)
    assert res.ok, res.problems
    assert res.compared > 20
    summary = json.loads(members(pack_blob)["summary.json"])
    assert res.recomputed["total_location_t_co2e"] == pytest.approx(summary["totals"]["total_location_t_co2e"])


class Quiet(dict):
    """The pack's members, without a 200 KB repr in Hypothesis' report."""

    def __repr__(self) -> str:
        return f"<pack of {len(self)} files>"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_byte_of_any_file_changed_fails(pack_files, data):
    files, key = dict(pack_files["files"]), pack_files["key"]
    name = data.draw(st.sampled_from(sorted(files)))
    at = data.draw(st.integers(0, len(files[name]) - 1))
    files[name] = flip(files[name], at)
    res = verify(rezip(files), key_pem=key)
    assert not res.ok
    if name in ("manifest.json", "manifest.sig"):
        # a changed byte in the manifest's key id names the key first ("key.mismatch"): still a precise refusal
        assert codes(res) & {"signature.invalid", "manifest.invalid", "key.mismatch"}, res.problems
    else:
        assert res.problems[0].code == "file.changed" and res.problems[0].file == name, res.problems
        assert name in str(res.problems[0])
        # SHA256SUMS changed also disagrees with the manifest line by line
        assert codes(res) <= {"file.changed", "sums.mismatch"}


def test_two_files_swapped_fail_naming_both(pack_blob, park_key):
    files = members(pack_blob)
    files["energy_daily.csv"], files["factors.csv"] = files["factors.csv"], files["energy_daily.csv"]
    res = verify(rezip(files), key_pem=park_key)
    assert codes(res) == {"file.swapped"}
    assert {p.file for p in res.problems} == {"energy_daily.csv", "factors.csv"}
    assert "holds the content the manifest lists for factors.csv" in str(res.problems[0])


def test_a_dropped_file_and_an_added_file_fail(pack_blob, park_key):
    files = members(pack_blob)
    del files["output_monthly.csv"]
    res = verify(rezip(files, [("extra.csv", b"a,b\n")]), key_pem=park_key)
    assert {(p.code, p.file) for p in res.problems} == {("file.missing", "output_monthly.csv"),
                                                        ("file.added", "extra.csv")}


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_second_member_with_the_same_name_fails(pack_blob, park_key):
    files = members(pack_blob)
    res = verify(rezip(files, [("summary.json", b"{}")]), key_pem=park_key)
    assert "pack.duplicate_name" in codes(res)


def test_an_edited_manifest_fails_even_when_its_hashes_match_the_edited_file(pack_blob, park_key):
    files = members(pack_blob)
    files["summary.json"] = files["summary.json"].replace(b'"complete": true', b'"complete": false')
    manifest = json.loads(files["manifest.json"])
    import hashlib

    manifest["files"]["summary.json"] = hashlib.sha256(files["summary.json"]).hexdigest()
    files["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    res = verify(rezip(files), key_pem=park_key)
    assert codes(res) == {"signature.invalid", "sums.mismatch"}  # and SHA256SUMS disagrees with the new manifest
    assert "does not verify manifest.json" in str(res.problems[0])


def test_the_wrong_key_fails(pack_blob):
    other = keys.public_pem(Ed25519PrivateKey.generate().public_key()).encode()
    res = verify(pack_blob, key_pem=other)
    assert codes(res) == {"key.mismatch"} and "not by the key given" in str(res.problems[0])


def test_a_pack_resigned_by_another_key_fails_against_the_parks(pack_blob, park_key):
    """An attacker who re-signs with their own key (and ships it as signing_key.pem) is caught by --key."""
    files = members(pack_blob)
    evil = Ed25519PrivateKey.generate()
    manifest = json.loads(files["manifest.json"])
    files["signing_key.pem"] = keys.public_pem(evil.public_key()).encode()
    import hashlib

    old = manifest["files"]["signing_key.pem"]
    manifest["files"]["signing_key.pem"] = hashlib.sha256(files["signing_key.pem"]).hexdigest()
    files["SHA256SUMS"] = files["SHA256SUMS"].replace(old.encode(), manifest["files"]["signing_key.pem"].encode())
    manifest["files"]["SHA256SUMS"] = hashlib.sha256(files["SHA256SUMS"]).hexdigest()
    manifest["key_id"] = keys.fingerprint(evil.public_key())
    files["manifest.json"] = json.dumps(manifest).encode()
    files["manifest.sig"] = evil.sign(files["manifest.json"])
    assert verify(rezip(files)).ok  # whole, but whose? only the key id says
    res = verify(rezip(files), key_pem=park_key)
    assert codes(res) == {"key.mismatch"}


def test_a_revoked_key_fails_against_the_published_list(pack_blob, granted, park_key):
    from portal.evidence.verify import fingerprint, load_public

    key_id = fingerprint(load_public(park_key))
    listed = keys.published_json(granted.engine, "p")
    assert verify(pack_blob, key_pem=park_key, keys_json=listed).ok
    revoked = json.loads(listed)
    for k in revoked["keys"]:
        if k["key_id"] == key_id:
            k.update(status="revoked", revoked_at="2024-04-11T00:00:00+00:00", revoked_reason="laptop stolen")
    res = verify(pack_blob, key_pem=park_key, keys_json=json.dumps(revoked).encode())
    assert codes(res) == {"key.revoked"} and "laptop stolen" in str(res.problems[0])
    res = verify(pack_blob, key_pem=park_key, keys_json=json.dumps({"keys": []}).encode())
    assert codes(res) == {"key.unknown"}


def test_a_changed_figure_is_found_by_recomputation(pack_blob, park_key):
    """A pack whose summary was doctored and re-signed by the park (a bug, not an attacker) is caught by
    --recompute: the stated figure differs from the one recomputed from the lines and factor rows."""
    files = members(pack_blob)
    summary = json.loads(files["summary.json"])
    summary["totals"]["scope1_t_co2e"] *= 1.01
    assert not verify(rezip({**files, "summary.json": json.dumps(summary).encode()}), recompute=True).ok
    lines = files["emissions_lines.csv"].decode("utf-8-sig").splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("q_base")] = str(float(row[header.index("q_base")]) * 2)
    files["emissions_lines.csv"] = "\n".join([lines[0], ",".join(row), *lines[2:]]).encode()
    res = verify(rezip(files), recompute=True)
    assert any(p.code == "recompute.difference" and "emissions_lines.csv line 2" in p.message for p in res.problems)


# ---- the command line --------------------------------------------------------------------------------------------
def test_the_command_says_ok_or_exactly_what_failed(tmp_path, pack_blob, park_key, capsys):
    pack, key = tmp_path / "pack.zip", tmp_path / "park.pem"
    pack.write_bytes(pack_blob)
    key.write_bytes(park_key)
    assert main(["evidence", "verify", str(pack), "--key", str(key), "--recompute"]) == 0
    assert "OK: signature valid" in capsys.readouterr().out
    files = members(pack_blob)
    files["factors.csv"] = flip(files["factors.csv"], 10)
    pack.write_bytes(rezip(files))
    assert main(["evidence", "verify", str(pack), "--key", str(key)]) == 1
    out = capsys.readouterr().out
    assert "FAILED: 1 problem(s)" in out and "file.changed: factors.csv was changed" in out
    assert main(["evidence", "verify", str(tmp_path / "nothing.zip")]) == 2


# ---- openssl and sha256sum alone, as README.txt says -------------------------------------------------------------
def openssl_path(folder: Path, pack: bytes, key_pem: bytes, keys_json: bytes) -> dict[str, bool]:
    """Run README.txt's steps 2-5 with bash, unzip, openssl, sha256sum and jq; which steps passed."""
    folder.mkdir()
    (folder / "pack.zip").write_bytes(pack)
    (folder / "park.pem").write_bytes(key_pem)
    (folder / "keys.json").write_bytes(keys_json)
    unpacked = folder / "pack"
    unpacked.mkdir()
    subprocess.run(["unzip", "-q", "-o", "../pack.zip"], cwd=unpacked, check=False)
    key_id = json.loads((unpacked / "manifest.json").read_bytes())["key_id"] if (
        unpacked / "manifest.json").exists() else ""

    def sh(script: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", script], cwd=unpacked, capture_output=True, text=True)

    fp = sh("openssl pkey -pubin -in ../park.pem -outform DER | tail -c 32 | sha256sum | cut -d' ' -f1")
    status = sh(f"jq -r '.keys[] | select(.key_id == \"{key_id}\") | .status' ../keys.json")
    sig = sh("openssl pkeyutl -verify -pubin -inkey ../park.pem -rawin -in manifest.json -sigfile manifest.sig")
    sums = sh("sha256sum --quiet -c SHA256SUMS")
    listed = sh("grep -c \"\\\"SHA256SUMS\\\": \\\"$(sha256sum SHA256SUMS | cut -d' ' -f1)\\\"\" manifest.json")
    same = sh("diff <(ls -1 | sort) <( (cut -c67- SHA256SUMS; printf 'SHA256SUMS\\nmanifest.json\\nmanifest.sig\\n')"
              " | sort)")
    return {"key": fp.stdout.strip() == key_id, "not_revoked": status.stdout.strip() in ("active", "retired"),
            "signature": sig.returncode == 0 and "Signature Verified Successfully" in sig.stdout,
            "hashes": sums.returncode == 0, "sums_signed": listed.stdout.strip() == "1",
            "no_extra": same.returncode == 0 and same.stdout == ""}


def test_the_openssl_path_passes_a_genuine_pack_and_fails_each_tampering(tmp_path, pack_blob, park_key, granted):
    listed = keys.published_json(granted.engine, "p")
    assert all(openssl_path(tmp_path / "genuine", pack_blob, park_key, listed).values())
    files = members(pack_blob)

    def run(name: str, changed: dict[str, bytes], key: bytes = park_key, keys_json: bytes = listed,
            extra=()) -> dict[str, bool]:
        return openssl_path(tmp_path / name, rezip(changed, extra), key, keys_json)

    byte = run("byte", {**files, "energy_daily.csv": flip(files["energy_daily.csv"], 50)})
    assert not byte["hashes"] and byte["signature"]
    swapped = run("swap", {**files, "energy_daily.csv": files["factors.csv"], "factors.csv": files["energy_daily.csv"]})
    assert not swapped["hashes"]
    dropped = run("drop", {n: b for n, b in files.items() if n != "output_monthly.csv"})
    assert not dropped["hashes"] and not dropped["no_extra"]
    added = run("add", files, extra=[("extra.csv", b"x\n")])
    assert added["hashes"] and not added["no_extra"]
    manifest = run("manifest", {**files, "manifest.json": files["manifest.json"].replace(b'"2024-03"', b'"2024-04"')})
    assert not manifest["signature"]
    sums = run("sums", {**files, "SHA256SUMS": files["SHA256SUMS"].replace(b"  summary.json\n", b"  summary.jsonx\n")})
    assert not sums["sums_signed"]
    wrong = run("wrong", files, key=keys.public_pem(Ed25519PrivateKey.generate().public_key()).encode())
    assert not wrong["key"] and not wrong["signature"]
    revoked = json.loads(listed)
    for k in revoked["keys"]:
        k["status"] = "revoked"
    assert not run("revoked", files, keys_json=json.dumps(revoked, indent=2).encode())["not_revoked"]


def test_readme_documents_the_steps_the_test_runs(pack_blob):
    readme = members(pack_blob)["README.txt"].decode()
    for step in ("openssl pkey -pubin -in signing_key.pem -outform DER | tail -c 32 | sha256sum",
                 "openssl pkeyutl -verify -pubin -inkey signing_key.pem -rawin -in manifest.json -sigfile manifest.sig",
                 "sha256sum -c SHA256SUMS", "jq -r '.keys[] | select(.key_id ==",
                 "diff <(ls -1 | sort) <( (cut -c67- SHA256SUMS; printf 'SHA256SUMS\\nmanifest.json\\nmanifest.sig\\n')"
                 " | sort)"):
        assert step in readme, step
    docs = (Path(__file__).resolve().parents[2] / "docs" / "evidence.md").read_text(encoding="utf-8")
    assert "openssl pkeyutl -verify -pubin" in docs and "sha256sum -c SHA256SUMS" in docs


def test_water_meters_are_listed_but_not_held_against_the_accounting_lines(pack_blob):
    """Water is metered and listed in energy_daily.csv but is not energy (no accounting line): recompute does not
    call its days a difference; the same rows as electricity are one."""
    from portal.evidence.verify import Result, recompute_figures

    files = members(pack_blob)
    text = files["energy_daily.csv"].decode("utf-8-sig").rstrip("\r\n").split("\r\n")
    header = text[0].split(",")
    row = text[1].split(",")
    row[header.index("meter")], row[header.index("unit")], row[header.index("quantity")] = "E1-W1", "m3", "42.0"
    for carrier, problems in (("water", 0), ("electricity", 1)):
        row[header.index("carrier")] = carrier
        edited = "\r\n".join([*text, ",".join(row)]) + "\r\n"
        res = Result()
        recompute_figures(res, files | {"energy_daily.csv": b"\xef\xbb\xbf" + edited.encode()})
        assert len([p for p in res.problems if "energy_daily.csv" in p.message]) == problems, res.problems
