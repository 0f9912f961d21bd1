"""README.txt of an evidence pack: what it holds and how to verify it, with our command or with openssl and sha256sum
alone (the same steps as docs/evidence.md; tests/evidence/test_openssl.py runs them)."""

from __future__ import annotations

OPENSSL_STEPS = """\
  1. Unpack / 解压:
       mkdir pack && cd pack && unzip ../{name}
  2. The signing key is the park's / 确认签名公钥属于园区 (key id = SHA-256 of the raw 32-byte Ed25519 key):
       openssl pkey -pubin -in signing_key.pem -outform DER | tail -c 32 | sha256sum
     must print / 应输出: {key_id}
     and that key id must be listed, and not revoked, in the park's published keys
     该密钥编号须列在园区公布的公钥清单中且未被吊销: {url}
       curl -s {url} > keys.json
       jq -r '.keys[] | select(.key_id == "{key_id}") | .status' keys.json
     must print active or retired / 应输出 active 或 retired (revoked or nothing: do not trust the pack)
     (better still, verify with the public key downloaded from there: {key_url})
  3. The manifest is signed by that key / 验证清单签名:
       openssl pkeyutl -verify -pubin -inkey signing_key.pem -rawin -in manifest.json -sigfile manifest.sig
     must print / 应输出: Signature Verified Successfully
  4. Every file is the one the manifest lists / 核对每个文件的哈希:
       sha256sum -c SHA256SUMS
       grep -c "\\"SHA256SUMS\\": \\"$(sha256sum SHA256SUMS | cut -d' ' -f1)\\"" manifest.json
     every line OK; the grep prints 1 (SHA256SUMS is the one the signed manifest names)
  5. No file added or removed / 没有增删文件:
       diff <(ls -1 | sort) <( (cut -c67- SHA256SUMS; printf 'SHA256SUMS\\nmanifest.json\\nmanifest.sig\\n') | sort)
     prints nothing
"""


def key_lines(published: list[dict] | None) -> str:
    """The park's public keys when the pack was signed: id, status, since when (every one stays published)."""
    if not published:
        return "  (see the published list)"
    return "\n".join(f"  {k['key_id']}  {k['status']:<8} created {k['created_at'][:10]}"
                     + (f", retired {k['retired_at'][:10]}" if k.get("retired_at") else "")
                     + (f", REVOKED {k['revoked_at'][:10]}: do not trust packs it signed" if k.get("revoked_at")
                        else "") for k in published)


def readme_text(base: dict, public_keys_url: str, published: list[dict] | None = None) -> str:
    e, p, c = base["enterprise"], base["period"], base["consent"]
    key_id = base["key_id"]
    name = f"evidence-{base['park']['id']}-{e['id']}-{p['label']}.zip"
    key_url = public_keys_url.rsplit("/", 1)[0] + f"/{key_id}.pem"
    return f"""ParkCarbon 绿色信贷证据包 / green-loan evidence pack
==================================================

园区 Park:        {base['park']['name']} ({base['park']['name_en']}, {base['park']['id']})
企业 Enterprise:  {e['name']} ({e['name_en']}, {e['id']}, {e['credit_code']})
统计期 Period:    {p['label']}  [{p['start']}, {p['end']}){'' if p['complete'] else '  (to date / 截至当前)'}
授权 Consent:     #{c['id']} for {c['bank']}, purpose {c['purpose']}, data {', '.join(c['data'])}
签名 Signature:   Ed25519, key id {key_id}
公钥 Public keys: {public_keys_url}

园区公钥（签名时）/ The park's public keys when this pack was signed (old keys stay valid for their packs):
{key_lines(published)}

内容 Contents
-------------
report.pdf             报告（中英双语）/ the report, zh-CN and English
summary.json           报告中的主要数字 / the report's headline figures
energy_daily.csv       每块计量表每日能耗及数据质量 / energy per meter and day, with quality codes
emissions_monthly.csv  每月范围一、范围二（基于位置、基于市场）及折标煤 / emissions by scope and method, per month
emissions_lines.csv    核算明细：活动量、所用因子编号、结果 / accounting lines: activity, factor ids, results
factors.csv            所用排放因子及来源 / the factor rows used, with their sources
output_monthly.csv     企业申报的月度产值（自证）/ output value declared by the enterprise
utilisation_daily.csv  设备手环每日开工率（如授权）/ utilisation per bracelet and day (if consented)
trust.csv              每个数字的可信度（自证/互证/他证）/ trust tier of each figure
crosscheck.csv         电表与设备手环估算电量核对（如授权）/ meters against bracelet estimates (if consented)
risk_indicators.csv    产能、产量、能耗规模与弹性系数（如授权）/ risk indicators with peers (if consented)
capacity_monthly.csv   每月有效产能（如授权）/ effective capacity per month (if consented)
shutdown_signals.csv   停产风险信号（如授权）/ shutdown-risk signals (if consented)
baseline_monthly.csv   基准期（上一年同期，如授权）每月能耗、排放与产值 / baseline months a year earlier (if consented)
restatements.csv       与此前证据包不同的数字 / figures that differ from an earlier pack
signing_key.pem        签名公钥 / the public key that signed
SHA256SUMS             每个文件的 SHA-256 / SHA-256 of every file
manifest.json          清单（已签名）/ the signed manifest
manifest.sig           清单的 Ed25519 签名（64 字节）/ the manifest's Ed25519 signature (64 raw bytes)

CSV 文件为带 BOM 的 UTF-8；数字为能精确读回的最短写法；空格表示无数据（不是 0）。
CSV files are UTF-8 with a BOM; numbers are the shortest text that reads back exactly; an empty cell is no data
(never 0).

验证方法一 Verify with ParkCarbon
-------------------------------
  parkcarbon evidence verify {name} --key <the park's public key .pem> [--keys keys.json] --recompute

  检查签名和每个文件的哈希，并用包内数据和因子重新计算所有主要数字。
  Checks the signature and every file's hash, and recomputes every headline figure from the pack's own data files
  and factor rows, listing any difference.

验证方法二 Verify with openssl and sha256sum only (bash, OpenSSL 3)
-----------------------------------------------------------------
{OPENSSL_STEPS.format(name=name, key_id=key_id, url=public_keys_url, key_url=key_url)}
任何一步失败，证据包即被改动过或并非园区签发。
If any step fails, the pack was changed or was not issued by the park.
"""
