"""chipmix diff: two plans compared by cost term, vendor, cloud and pricing, and by hour."""

import json

import optimizer
from optimizer.analyses.diff import diff_plans, within_gaps
from tests.helpers import chip, chipmix, inference, instance_data, pool, site, solve_checked


def two_vendor_day(cheap_available):
    # Demand 4 PFLOP/s in each of 3 hours; the Nvidia pool at $1 per chip, the TPU pool at $2.
    return instance_data(
        hours=3,
        chips=[chip("h100", "nvidia"), chip("v6e", "google")],
        sites=[site("aws"), site("gcp", cloud="gcp")],
        pools=[pool("nv", site="aws", usd_per_chip_hour=1.0, available=cheap_available),
               pool("tpu", site="gcp", chip="v6e", usd_per_chip_hour=2.0, available=10)],
        workloads=[inference(demand_pflops=4.0, efficiency={"h100": 1.0, "v6e": 1.0})],
    )


def test_a_shock_moves_chips_to_the_other_vendor_in_the_hour_it_hits(tmp_path):
    # A: 4 Nvidia chips every hour, $12.  B: the Nvidia pool has 1 chip in hour 1, so 3 TPU chips
    # there: 4 + (1 + 6) + 4 = $15; 3 chip-hours leave Nvidia for Google, all in hour 1.
    a_data, b_data = two_vendor_day(10), two_vendor_day([10, 1, 10])
    a, b = optimizer.instance_from_data(a_data), optimizer.instance_from_data(b_data)
    solve_checked(a, tmp_path).write(tmp_path / "A")
    solve_checked(b, tmp_path).write(tmp_path / "B")
    result = diff_plans(a, tmp_path / "A", tmp_path / "B", b)
    cost = result.cost.set_index("term")
    assert cost.loc["total"].tolist() == [12.0, 15.0, 3.0] and cost.loc["usage", "change_usd"] == 3.0
    by = result.chip_hours.set_index(["by", "value"])
    assert by.loc[("vendor", "nvidia")].tolist() == [12, 9, -3]
    assert by.loc[("vendor", "google")].tolist() == [0, 3, 3]
    assert by.loc[("cloud", "gcp"), "change"] == 3
    # Hour 1: 3 chips left nv and 3 came to tpu, 6 moved; no other hour changed.
    assert result.hours.to_dict("records") == [{"hour": 1, "a_chips": 4, "b_chips": 4, "moved_chips": 6}]
    assert result.headline["change_usd"] == 3.0 and not within_gaps(result)

    paths = []
    for name, data in (("a.json", a_data), ("b.json", b_data)):
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(data))
    run = chipmix("diff", tmp_path / "A", tmp_path / "B", "--instance", paths[0], "--instance-b", paths[1],
                  "--json", tmp_path / "diff.json")
    assert run.returncode == 0, run.stderr
    assert "B - A: +3.00 USD, 6 chip-hours moved" in run.stdout
    assert json.loads((tmp_path / "diff.json").read_text())["hours"][0]["moved_chips"] == 6


def test_diff_against_the_wrong_instance_is_one_input_error(tmp_path):
    a = optimizer.instance_from_data(two_vendor_day(10))
    solve_checked(a, tmp_path).write(tmp_path / "A")
    other = tmp_path / "other.json"
    other.write_text(json.dumps(two_vendor_day([10, 1, 10])))
    run = chipmix("diff", tmp_path / "A", tmp_path / "A", "--instance", other)
    assert run.returncode == 2 and "made for another instance" in run.stderr and "Traceback" not in run.stderr
