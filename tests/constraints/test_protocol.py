"""The koide2024 protocol file and the validating loader."""
import pytest

from constraints import ProtocolError, InputError, load_protocol, builtin_protocols, match_roi_names
from constraints.protocol import normalize_roi_name

KOIDE = load_protocol("koide2024")
SRC = KOIDE.text


class TestKoide2024:
    def test_header(self):
        assert KOIDE.name == "koide2024" and KOIDE.version == "1.0.0"
        assert "doi:10.1007/s11604-024-01539-x" in KOIDE.source
        assert len(KOIDE.sha256) == 64
        assert "koide2024" in builtin_protocols()

    def test_notes_state_the_seeds_20_gy_contradiction(self):
        # Table 3: SBRT-only esophageal D0.035cc 114 Gy3 BED (fatal case), 106 (others), 2 fx.
        # D = (n a/b / 2)(sqrt(1 + 4 BED / (n a/b)) - 1) = 3 (sqrt(1 + 114/1.5) - 1) = 23.32 Gy;
        # 3 (sqrt(1 + 106/1.5) - 1) = 22.40 Gy: both above the 20 Gy cap the text says was met.
        from constraints.lq import dose_from_bed_unchecked
        assert round(float(dose_from_bed_unchecked(114.0, 2, 3.0)), 1) == 23.3
        assert round(float(dose_from_bed_unchecked(106.0, 2, 3.0)), 1) == 22.4
        notes = " ".join(KOIDE.notes.split())
        assert "114 Gy3 BED for the fatal case (23.3 Gy in 2 fx)" in notes
        assert "up to 106 Gy3 BED (22.4 Gy)" in notes

    def test_prescription(self):
        p = KOIDE.prescription
        assert (p.target, p.dose_gy, p.fractions) == ("ptv_eval", 24.0, 2)

    @pytest.mark.parametrize("prior_bed, limit", [
        (0, 12.2), (90, 12.2), (90.5, 12.1), (91, 12.1), (95.5, 11.4), (96, 11.4), (96.01, 11.2),
        (99.5, 10.8), (100, 10.8), (120, 10.8),
    ])
    def test_cord_table(self, prior_bed, limit):
        assert KOIDE.tables["cord_prv_d0035cc"].lookup(prior_bed) == limit

    def test_cord_table_is_the_linear_rule(self):
        # each 1 Gy2 step of (90, 100] falls 0.14 Gy, rounded to 0.1 Gy (DESIGN §3)
        for k, (bound, limit) in enumerate(KOIDE.tables["cord_prv_d0035cc"].rows):
            assert bound == 90 + k
            assert limit == round(12.2 - 0.14 * k, 1)

    def test_esophagus_cumulative_limits(self):
        by_id = {c.id: c for c in KOIDE.constraints}
        assert [(by_id[i].metric.text, by_id[i].limit, by_id[i].comparison, by_id[i].domain) for i in
                ("esophagus_cum_dmax", "esophagus_cum_d0035cc", "esophagus_cum_d1cc")] == [
            ("Dmax", 203.0, "<", "cumulative_bed"), ("D0.035cc", 187.0, "<", "cumulative_bed"),
            ("D1cc", 167.0, "<", "cumulative_bed")]
        assert KOIDE.organs["esophagus"].alpha_beta_gy == 3.0

    def test_other_oars_20gy(self):
        organs = {c.organ for c in KOIDE.constraints if c.id.startswith("other_oars_sbrt_d0035cc")}
        assert organs == {"esophagus", "pharynx", "larynx", "trachea", "main_bronchus", "stomach", "lungs",
                          "carotid_arteries", "aorta", "unspecified_tissue"}
        assert all(c.limit == 20.0 and c.domain == "sbrt_physical" for c in KOIDE.constraints
                   if c.id.startswith("other_oars"))

    def test_generalized_cord_rule_is_advisory(self):
        adv = [c for c in KOIDE.constraints if c.advisory]
        assert {(c.domain, c.limit) for c in adv} == {("cumulative_eqd2", 70.0), ("sbrt_eqd2", 25.0)}

    def test_limit_of(self):
        cord = KOIDE.constraints_for("spinal_cord_prv")[0]
        assert KOIDE.limit_of(cord, table_input=95.5) == 11.4
        with pytest.raises(InputError, match="give the table input"):
            KOIDE.limit_of(cord)


def mutate(tmp_path, old, new, count=1):
    assert old in SRC, old
    p = tmp_path / "p.toml"
    p.write_text(SRC.replace(old, new, count))
    return str(p)


@pytest.mark.parametrize("old, new, match", [
    ('alpha_beta_gy = 3.0\naliases = ["Esophagus"', 'alpha_beta_gy = -3.0\naliases = ["Esophagus"',
     r"\[organs.esophagus\]: field 'alpha_beta_gy' must be > 0, got -3.0"),
    ('alpha_beta_gy = 3.0\naliases = ["Esophagus"', 'aliases = ["Esophagus"',
     r"\[organs.esophagus\]: field 'alpha_beta_gy' is missing"),
    ('organ = "esophagus"\nmetric = "Dmax"', 'organ = "esophagos"\nmetric = "Dmax"',
     r"\[\[constraints\]\] 'esophagus_cum_dmax': field 'organ' names unknown organ 'esophagos'"),
    ('metric = "D1cc"', 'metric = "D1ml"', r"'esophagus_cum_d1cc' field 'metric' 'D1ml' is not a known metric"),
    ('limit = 167.0\nunit = "Gy BED"', 'limit = 167.0\nunit = "Gy"',
     r"unit 'Gy' does not match domain 'cumulative_bed', whose limits are in 'Gy BED'"),
    ('domain = "cumulative_bed"', 'domain = "cumulative"', r"field 'domain' must be one of"),
    ('limit = 203.0', 'limit = "203"', r"field 'limit' must be a number"),
    ('limit = 203.0', 'limit = -203.0', r"field 'limit' must be > 0"),
    ('limit = 203.0\n', '', r"give exactly one of 'limit' or 'limit_table'"),
    ('format = 1', 'format = 2', "format 2 is not supported"),
    ('[eligibility]', '[eligibility]\nfoo = 1', r"\[eligibility\]: unknown field\(s\) \['foo'\]"),
    ('limit_table = "cord_prv_d0035cc"', 'limit_table = "cord_table"', "names unknown table 'cord_table'"),
    ('[91.0, 12.1]', '[89.0, 12.1]', "row bounds must increase strictly"),
    ('comparison = "<"\nlimit = 187.0', 'comparison = "=="\nlimit = 187.0', "field 'comparison' must be one of"),
    ('high_grade_bilsky = ["1c", "2", "3"]', 'high_grade_bilsky = ["1d"]', r"unknown grade\(s\) \['1d'\]"),
    ('aliases = ["Trachea"]', 'aliases = ["Esoph"]', "alias 'Esoph' is also an alias of organ 'esophagus'"),
    ('unit = "%"', 'unit = "Gy"', "unit 'Gy' does not fit metric 'V24Gy'"),
    ('version = "1.0.0"', 'version = ""', r"\[protocol\]: field 'version' must be a non-empty string"),
    # a list entry, not an organ key: once a bare TypeError (unhashable), found by the fuzzer
    ('organs = ["esophagus", "pharynx"', 'organs = [{}, "pharynx"',
     r"'other_oars_sbrt_d0035cc': field 'organs' names unknown organ \{\}"),
    # an empty list: once loaded with the limit silently dropped
    ('organs = ["esophagus", "pharynx", "larynx", "trachea", "main_bronchus", "stomach", "lungs", '
     '"carotid_arteries", "aorta", "unspecified_tissue"]', 'organs = []',
     r"'other_oars_sbrt_d0035cc': field 'organs' must name at least one organ"),
])
def test_invalid_protocol_names_file_entry_field(tmp_path, old, new, match):
    path = mutate(tmp_path, old, new)
    with pytest.raises(ProtocolError, match=match) as info:
        load_protocol(path)
    assert path in str(info.value)


def test_toml_syntax_error_and_missing_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("format = \n")
    with pytest.raises(ProtocolError, match="is not valid TOML"):
        load_protocol(str(p))
    with pytest.raises(ProtocolError, match="cannot be read"):
        load_protocol(str(tmp_path / "missing.toml"))
    with pytest.raises(ProtocolError, match="unknown protocol 'koide2025'; built-in protocols: koide2024"):
        load_protocol("koide2025")


class TestRoiMatching:
    def test_aliases_case_and_separators(self):
        m = match_roi_names(["spinalcord prv", "ESOPH", "Body", "PTVeval", "GTV", "Lung_L+R"], KOIDE)
        assert m.organ_to_roi["spinal_cord_prv"] == "spinalcord prv"
        assert m.organ_to_roi["esophagus"] == "ESOPH"
        assert m.organ_to_roi["lungs"] == "Lung_L+R"
        assert m.unmatched_rois == ("GTV",)
        assert "aorta" in m.missing_organs

    def test_ambiguous_is_an_error_naming_both(self):
        with pytest.raises(InputError, match=r"ROIs \['Esophagus', 'Esoph'\] all match organ 'esophagus'"):
            match_roi_names(["Esophagus", "Esoph"], KOIDE)

    def test_override_wins(self):
        m = match_roi_names(["Esophagus", "Esoph"], KOIDE, overrides={"esophagus": "Esoph"})
        assert m.organ_to_roi["esophagus"] == "Esoph" and m.unmatched_rois == ("Esophagus",)

    def test_bad_overrides(self):
        with pytest.raises(InputError, match="unknown organ 'gullet'"):
            match_roi_names(["Esophagus"], KOIDE, overrides={"gullet": "Esophagus"})
        with pytest.raises(InputError, match="names ROI 'Esoph', which the plan does not have"):
            match_roi_names(["Esophagus"], KOIDE, overrides={"esophagus": "Esoph"})

    def test_normalize(self):
        assert normalize_roi_name("Spinal_Cord-PRV 1.5") == "spinalcordprv15"
