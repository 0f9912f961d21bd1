"""The factor registry: sourced rows, dated lookups with logged fall-backs, park factor files (methodology 2)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from carbon.errors import FactorFileError, FactorNotFoundError, InputError
from carbon.factors import FactorPolicy, FactorRegistry, normalise, parse_factor_file
from carbon.regions import enterprise_regions, normalise_region, region_chain
from park.model import Enterprise, Park

REGISTRY = FactorRegistry.shipped()
JIANGSU = region_chain("Jiangsu", None)
HEADER = "kind,key,parameter,region,enterprise,value,unit,valid_from,valid_to,source,publication,verified\n"


def grid(on: date, basis: str = "average", regions=JIANGSU, **policy):
    return REGISTRY.resolve("grid", "electricity", basis, regions, on, FactorPolicy(**policy))


def test_every_shipped_row_has_a_source_and_a_verified_flag():
    frame = REGISTRY.frame()
    assert len(frame) >= 60
    assert frame["source"].str.len().gt(0).all()
    assert set(frame["verified"]) == {True, False}
    assert frame.loc[frame["id"] == "grid/electricity/ets/national/2021-01-01", "verified"].item() is False


def test_values_are_kept_as_published_and_normalised_per_base_unit():
    assert normalise("grid", "average", 0.5617, "tCO2/MWh")[0] == pytest.approx(0.0005617)
    assert normalise("fuel", "ncv", 389.31, "GJ/10^4 m3") == pytest.approx((0.038931, "volume"))
    assert normalise("fuel", "carbon_content", 15.3, "tC/TJ")[0] == pytest.approx(0.0153)
    assert normalise("fuel", "oxidation", 99, "%")[0] == pytest.approx(0.99)
    assert normalise("tce", "all", 0.03412, "kgce/MJ")[0] == pytest.approx(0.03412)  # tce per GJ


def test_the_province_maps_to_its_regional_grid():
    assert JIANGSU == ("jiangsu", "east_china", "national", "global")
    assert normalise_region("江苏省") == "jiangsu" and normalise_region("华东") == "east_china"
    assert region_chain("Inner Mongolia", "northeast")[:2] == ("inner_mongolia", "northeast")
    with pytest.raises(InputError, match="unknown region 'Atlantis'"):
        normalise_region("Atlantis")


def test_an_enterprise_in_another_province_gets_that_province_grid():
    park = Park("p", "P", province="Jiangsu", grid_region="east_china",
                enterprises=(Enterprise("E1", "a"), Enterprise("E2", "b", province="Sichuan")))
    chains = dict(zip(*enterprise_regions(park)[["enterprise", "regions"]].T.values, strict=True))
    assert chains["E1"][:2] == ("jiangsu", "east_china")
    assert chains["E2"][:2] == ("sichuan", "southwest")


# ---- example F1 (methodology 2.2): the year rule and the fall-backs --------------------------------------------


def test_example_f1_reporting_year_2024_uses_data_year_2022_of_the_regional_grid():
    res = grid(date(2024, 3, 1))
    assert (res.row.region, res.row.data_year, res.row.value) == ("east_china", 2022, 0.5617)
    assert res.region_fallback and not res.prior_year
    assert res.reason == "no electricity/average factor for jiangsu; used east_china"


def test_example_f1_a_provincial_factor_wins_when_it_exists():
    res = grid(date(2024, 6, 1), regions=region_chain("Hebei", None))
    assert (res.row.region, res.row.value) == ("hebei", 0.7252) and not res.region_fallback


def test_example_f1_a_newer_regional_year_beats_an_older_provincial_one():
    res = grid(date(2025, 6, 1), regions=region_chain("Hebei", None))
    assert (res.row.region, res.row.data_year, res.row.value) == ("north_china", 2023, 0.6361)


def test_example_f1_residual_falls_back_to_national_and_closest_prior_year():
    res = grid(date(2026, 3, 1), basis="residual")
    assert (res.row.region, res.row.data_year, res.row.value) == ("national", 2023, 0.6096)
    assert res.region_fallback and res.prior_year
    assert "none valid on 2024-03-01; used the closest prior" in res.reason


def test_example_f1_as_published_on_a_date_reproduces_an_earlier_report():
    # Before the 2023 factors were released (2026-01), March 2025 resolved to data year 2022 ...
    before = grid(date(2025, 3, 1), as_of=date(2025, 12, 31))
    assert (before.row.data_year, before.row.value, before.prior_year) == (2022, 0.5617, True)
    # ... and with them, to 2023: 500 MWh go from 280.85 t to 275.00 t (restated, see test_carbon_restatement)
    after = grid(date(2025, 3, 1))
    assert (after.row.data_year, after.row.value, after.prior_year) == (2023, 0.55, False)
    assert 500_000 * before.row.per_base == pytest.approx(280.85)
    assert 500_000 * after.row.per_base == pytest.approx(275.0)


def test_the_data_year_can_be_pinned_or_the_lag_changed():
    assert grid(date(2024, 3, 1), grid_data_year=2023).row.value == 0.55
    assert grid(date(2023, 3, 1), grid_lag_years=0).row.value == 0.55
    with pytest.raises(FactorNotFoundError, match="on 2024-03-01"):
        grid(date(2024, 3, 1), grid_data_year=2019)


# ---- park factor files (methodology 2.4) -------------------------------------------------------------------------


def test_a_park_override_wins_for_its_region_and_dates(tmp_path: Path):
    path = tmp_path / "factors.csv"
    path.write_text(HEADER + "heat,steam,enthalpy,jiangsu,,2942.6,kJ/kg,2024-01-01,,supplier steam certificate "
                    "1.0 MPa 250 C,Jiangnan Thermal 2024-01,true\n", encoding="utf-8")
    rows = parse_factor_file(path)
    registry = REGISTRY.with_overrides(rows)
    res = registry.resolve("heat", "steam", "enthalpy", JIANGSU, date(2024, 3, 1))
    assert res.row.value == 2942.6 and res.row.is_override and not res.region_fallback
    assert res.row.origin == f"park {path}:2"
    assert registry.resolve("heat", "steam", "enthalpy", JIANGSU, date(2023, 12, 1)).row.value == 2777.1
    assert registry.fingerprint() != REGISTRY.fingerprint()


def test_an_enterprise_specific_row_applies_to_that_enterprise_only():
    rows = parse_factor_file((HEADER + "fuel,natural_gas,ncv,national,E2,36.0,MJ/m3,2024-01-01,,lab report "
                              "2024-017,,false\n").encode())
    registry = REGISTRY.with_overrides(rows)

    def ncv(enterprise: str) -> float:
        return registry.resolve("fuel", "natural_gas", "ncv", JIANGSU, date(2024, 3, 1),
                                enterprise=enterprise).row.value

    assert (ncv("E2"), ncv("E1")) == (36.0, 389.31)


def test_a_bad_factor_file_lists_every_problem_with_its_line():
    text = HEADER + "\n".join([
        "grid,electricity,average,Atlantis,,0.5,tCO2/MWh,2024-01-01,,x,,true",
        "fuel,natural_gas,ncv,national,,abc,GJ/t,2024-01-01,,x,,true",
        "fuel,natural_gas,ncv,national,,48,GJ/kWh,2024-01-01,,x,,true",
        "fuel,diesel,oxidation,national,,1.5,fraction,2024-01-01,,x,,maybe",
        "heat,heat,emission,national,,0.1,tCO2/GJ,2024-05-01,2024-01-01,,,true",
        "tce,diesel,all,national,,1.45,kgce/kg,2024-01-01,,x,,true",
        "tce,diesel,all,national,,1.46,kgce/kg,2024-06-01,,x,,true",
    ]) + "\n"
    with pytest.raises(FactorFileError) as err:
        parse_factor_file(text.encode(), "park-factors.csv")
    lines = [(p.line, p.message) for p in err.value.problems]
    messages = str(err.value)
    assert "park-factors.csv:2: unknown region 'Atlantis'" in messages
    assert (3, "value 'abc' is not a number") in lines
    assert any(line == 4 and "per mass or volume, not per electric_energy" in m for line, m in lines)
    assert any(line == 5 and "verified 'maybe'" in m for line, m in lines)
    assert any(line == 5 and "oxidation 1.5 fraction must be a share" in m for line, m in lines)
    assert any(line == 6 and "valid_to 2024-01-01 is before valid_from" in m for line, m in lines)
    assert any(line == 6 and "source is empty" in m for line, m in lines)
    assert any(line == 8 and "overlaps the row on line 7" in m for line, m in lines)


def test_a_factor_file_with_wrong_columns_is_refused_at_line_1():
    with pytest.raises(FactorFileError, match="1: missing column.*verified.*unknown column.*colour"):
        parse_factor_file(b"kind,key,parameter,region,value,unit,valid_from,source,colour\n")


def test_a_non_utf8_factor_file_is_refused():
    with pytest.raises(FactorFileError, match="not UTF-8"):
        parse_factor_file(HEADER.encode() + "heat,heat,emission,全国".encode("gbk") + b"\n", "f.csv")


# ---- resolve: the lookup ordered once per (key, regions, policy, enterprise), equal to the per-date search ----

def _resolve_reference(registry, kind, key, parameter, regions, on, policy, enterprise=None):
    """The per-date candidate search resolve() did before its orders were cached (kept as the reference)."""
    from carbon.errors import FactorNotFoundError
    from carbon.factors import Resolution, region_level

    wanted = tuple(regions)
    regions = policy.grid_regions(wanted) if kind == "grid" else wanted
    target = policy.target_date(kind, parameter, on)
    rank = {r: i for i, r in enumerate(regions)}
    candidates = [
        r for r in registry._by_key.get((kind, key, parameter), ())
        if r.region in rank and (r.enterprise is None or r.enterprise == enterprise) and r.valid_from <= target
        and (policy.as_of is None or r.published is None or r.published <= policy.as_of)
    ]
    if not candidates:
        raise FactorNotFoundError(kind, key, parameter, regions, on, enterprise)

    def specificity(r):
        return (0 if r.enterprise else 1, rank[r.region], 0 if r.is_override else 1)

    covering = [r for r in candidates if r.covers(target)]
    if covering:
        row = min(covering, key=lambda r: (*specificity(r), -r.valid_from.toordinal()))
    else:
        row = min(candidates, key=lambda r: (-r.valid_to.toordinal(), *specificity(r)))
    fell_back = not row.enterprise and rank[row.region] > 0
    level_fell = kind == "grid" and policy.grid_level is not None and region_level(row.region) != policy.grid_level
    return Resolution(row, regions, on, target, region_fallback=fell_back, prior_year=not covering,
                      level_fallback=level_fell)


def test_a_lookup_resolves_to_the_row_the_per_date_search_chose():
    """For random registries (regions of a chain, general and enterprise rows, overrides, open and closed
    validities, publication dates) and random lookups (dates, as-of policies, lagged grid bases, fixed grid
    levels), resolve() gives the reference's row and flags, or both find none; repeated lookups (cached) too."""
    from datetime import date, timedelta

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from carbon.errors import FactorNotFoundError
    from carbon.factors import FactorPolicy, FactorRegistry, FactorRow

    chain = ("CN-JS", "CN-EAST", "CN")
    day = st.integers(0, 1500).map(lambda n: date(2020, 1, 1) + timedelta(days=n))
    later = st.integers(1500, 2600).map(lambda n: date(2020, 1, 1) + timedelta(days=n))  # often after every row
    row_st = st.builds(
        lambda kind_param, region, who, start, length, published, park, value: FactorRow(
            kind=kind_param[0], key="electricity" if kind_param[0] == "grid" else "diesel",
            parameter=kind_param[1], region=region, value=value, unit="t/MWh", valid_from=start,
            valid_to=None if length is None else start + timedelta(days=length), source="test", published=published,
            enterprise=who, origin="park f.csv:1" if park else "shipped x.csv:1"),
        st.sampled_from([("grid", "average"), ("fuel", "ncv")]), st.sampled_from(chain),
        st.sampled_from([None, None, None, "E1"]), day, st.one_of(st.none(), st.integers(0, 800)),
        st.one_of(st.none(), day), st.booleans(), st.floats(0.1, 2.0))

    @settings(max_examples=300, deadline=None)
    @given(st.lists(row_st, max_size=12),
           st.lists(st.tuples(st.sampled_from([("grid", "average"), ("fuel", "ncv")]), st.one_of(day, later),
                              st.sampled_from([None, "E1"]), st.one_of(st.none(), day),
                              st.sampled_from([None, "provincial", "regional", "national"]),
                              st.sampled_from([chain, chain[1:], ("CN-JS", "CN")])), min_size=1, max_size=8))
    def check(rows, lookups):
        registry = FactorRegistry(rows)
        for _ in range(2):  # the second pass is served from the caches
            for (kind, parameter), on, who, as_of, level, regions in lookups:
                policy = FactorPolicy(as_of=as_of, grid_level=level)
                key = "electricity" if kind == "grid" else "diesel"
                try:
                    want = _resolve_reference(registry, kind, key, parameter, regions, on, policy, who)
                except FactorNotFoundError:
                    with pytest.raises(FactorNotFoundError):
                        registry.resolve(kind, key, parameter, regions, on, policy, who)
                    continue
                got = registry.resolve(kind, key, parameter, regions, on, policy, who)
                assert got.row is want.row and got == want

    check()
