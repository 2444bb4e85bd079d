"""The farm model against cases whose answer follows from its rules by hand: one board alone,
a controller or a store that saturates, boards that share one CPU to start."""

from __future__ import annotations

import pytest

from lutfarm.workflows.farm_sim import FarmCosts, FarmScenario, simulate

FREE = FarmCosts(controller_cpu_per_case_s=0.0, commit_s=0.0, board_start_s=0.5)


def test_one_board_without_costs_is_busy_from_its_start_to_its_end():
    durations = [0.1, 0.3, 0.2, 0.4] * 10
    out = simulate(FREE, FarmScenario(1, durations))
    assert out.wall_s == pytest.approx(0.5 + sum(durations))
    assert out.efficiency == pytest.approx(sum(durations) / out.wall_s)
    assert out.started_s == [0.5]


def test_boards_split_the_work_and_the_tail_is_one_case():
    out = simulate(FREE, FarmScenario(4, [0.1] * 400))
    assert out.wall_s == pytest.approx(0.5 + 100 * 0.1, abs=0.1 + 1e-9)
    assert out.cases_per_s == pytest.approx(400 / out.wall_s)


def test_a_saturated_controller_sets_the_pace_and_two_halve_it():
    costs = FarmCosts(controller_cpu_per_case_s=0.01, commit_s=0.0, board_start_s=0.0)
    cases = [0.05] * 2000                  # 32 boards could do 640 cases/s; one CPU does 100
    one = simulate(costs, FarmScenario(32, cases))
    assert one.wall_s == pytest.approx(2000 * 0.01, rel=0.02)
    assert one.bottleneck == "controller CPU" and one.efficiency < 0.2
    two = simulate(costs, FarmScenario(32, cases, controllers=2))
    assert two.wall_s == pytest.approx(one.wall_s / 2, rel=0.03)


def test_a_store_serving_one_commit_at_a_time_is_the_bottleneck_of_four_controllers():
    costs = FarmCosts(controller_cpu_per_case_s=0.002, commit_s=0.004, board_start_s=0.0,
                      store_cores=1)
    out = simulate(costs, FarmScenario(64, [0.05] * 3000, controllers=4))
    assert out.bottleneck == "store"
    assert out.wall_s == pytest.approx(3000 * 0.004, rel=0.03)


def test_boards_sharing_one_cpu_start_one_after_another():
    costs = FarmCosts(controller_cpu_per_case_s=0.0, commit_s=0.0, board_start_s=0.3,
                      board_start_cpu_s=0.2)
    out = simulate(costs, FarmScenario(8, [0.1] * 80, shared_board_cpu=True))
    assert sorted(out.started_s) == pytest.approx([0.2 * (i + 1) + 0.1 for i in range(8)])
    alone = simulate(costs, FarmScenario(8, [0.1] * 80))
    assert alone.started_s == pytest.approx([0.3] * 8)
    assert alone.efficiency > out.efficiency
