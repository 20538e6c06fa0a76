"""Closed-loop PTVeval coverage tuning against per-voxel remaining tolerance.

1. Read the plan (adapter), refuse approved plans/structure sets, compute every
   organ's exact per-voxel SBRT limits (:func:`optimizer.organ_limits.organ_limits`).
2. In one ``CompositeAction``: copy the user's plan to ``rr_<plan>`` (the user's plan,
   its functions and dose stay untouched), create limit zones (``rr_`` ROIs), remove
   from the copy the copied *constraints* on the organs that get zones and the copied
   MaxDose functions on ROIs wholly inside one organ's zones, e.g. a planner's ring
   (their limits are superseded by the exact ones; listed in the record as
   ``replaced_constraints``), the copied objectives on PTVeval and fall-offs
   (``replaced_objectives``), add MaxDose constraints at each zone's level (lowest
   exact limit − margin; a MaxDvh constraint exempting the metric's volume where the
   organ's limits are all near-maximum metrics, e.g. D0.035cc), PTVeval objectives that do not fight the limits
   (:class:`TuningSettings` ``target_design``; default a MinDvh at Rx + 0.5 Gy to 80 %
   with a weak MinDose at Rx) and a dose fall-off, then loop:
   ``RunOptimization`` → read the dose → evaluate the exact per-voxel cumulative
   metrics and the whole protocol →
   * a limit fails: lower the failing zones' levels by their excess (+ 0.1 Gy; a
     failure of the sub-voxel rule alone by twice its excess; a MaxDvh zone only when its
     organ fails, by the higher DVH rule's excess);
   * after every run: each zone's margin covers the gap by which the sub-voxel rule
     reads its organ above the voxel rule;
   * all pass: when the run's V(Rx) is under half its V(Rx − 2 Gy), ask the MinDvh for
     that V(Rx − 2 Gy) and run again; else stop (optionally, ``relax_margins``: relax
     the binding zones' margins and stop when coverage gains < 0.5 points);
   or after ``max_optimizations`` runs.  Each run continues from the plan the previous
   one left (the first from the plan as loaded), as RayStation does without
   ``ResetOptimization``: a warm run converges in about a third of the iterations of
   one from reset (docs/decisions/closed-loop-settings.md); when the last run failed or
   covered less than the best passing run, the best run's settings are restored and
   optimized once more (one more call, evaluated like every other).
3. Add clinical goals, make ``rr_<plan>`` current, write the record (tuning log,
   final assessment) and print its path last.

The concepts live in their own modules: :mod:`.tuning_settings` (the knobs),
:mod:`.copied_functions` (what the copy loses), :mod:`.target_design` (the PTVeval
objectives) and :mod:`.zone_tuning` (the zone functions and how their levels move).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from constraints.dose_course import DoseCourse
from constraints.dvh import compute_dvh
from constraints.evaluation import PlanCase, evaluate_protocol
from constraints.protocol import Protocol, load_protocol
from optimizer.organ_limits import organ_limits

from .adapter import gather, get_api, read_dose_gy, roi_mask
from .assess import assessment_record, assessment_report, summary_lines
from .config import PluginConfig, load_config
from .copied_functions import replace_copied_constraints, replace_copied_target_objectives
from .limit_zones import Zone, build_zones
from .record import write_record
from .reference_limits import (ReferenceZone, build_reference_limits, has_reference_functions, set_zone_level,
                               spends_volume)
from .target_design import (adapt_min_dvh_wanted, adapted_min_dvh_percent, add_target_functions, ptv_coverage,
                            replace_target_by_dose_split, split_by_distance)
from .tuning_settings import TuningSettings
from .writeback import PREFIX, add_clinical_goal, check_editable, step, unique_plan_name
from .volume_exemption import add_exemptions, exemption_failures
from .zone_tuning import (add_zone_functions, cover_subvoxel_gaps, cumulative_excess, metric_excess,
                          relax_binding_zones, subvoxel_excess, subvoxel_gap, tighten_failing_zones, worst_margins)

__all__ = ["TuningSettings", "run_optimization", "main"]

_LOG = logging.getLogger(__name__)


def _add_goals(evaluation_setup: Any, case: PlanCase, protocol: Protocol, zones: List[Zone]) -> None:
    rx = protocol.prescription.dose_gy
    target = case.structures[protocol.prescription.target].name
    with step("add clinical goals"):
        add_clinical_goal(evaluation_setup, target, "AtLeast", "VolumeAtDose", 0.90, parameter_value=rx * 100.0)
        for z in (z for z in zones if not isinstance(z, ReferenceZone)):   # no single level to goal
            add_clinical_goal(evaluation_setup, z.roi_name, "AtMost", "DoseAtAbsoluteVolume",
                              z.level_gy() * 100.0 + 1e-6, parameter_value=z.exempt_cc or 0.0, priority=2)


def run_optimization(api: Any = None, config: Optional[PluginConfig] = None,
                     settings: TuningSettings = TuningSettings()) -> Tuple[str, Dict[str, Any]]:
    """Run the closed loop; return (record path, record)."""
    api = api or get_api()
    config = config or load_config()
    protocol = load_protocol(config.protocol)
    g = gather(api, config, protocol, require_dose=False)
    ctx = g.context
    check_editable(ctx.case, ctx.plan, ctx.examination.Name)
    limits = organ_limits(g.case, protocol, unknown_prior=config.unknown_prior)
    grid = g.case.grid
    fx = g.sbrt_fractions
    log: List[Dict[str, Any]] = []
    calls = 0
    with api.CompositeAction("reirrad: re-irradiation optimization"):
        new_name = unique_plan_name(ctx.case, PREFIX + ctx.plan.Name)
        with step(f"copy plan {ctx.plan.Name!r} to {new_name!r}"):
            ctx.case.CopyPlan(PlanName=ctx.plan.Name, NewPlanName=new_name, KeepBeamSetNames=True)
        new_plan = ctx.case.TreatmentPlans[new_name]
        new_bs = new_plan.BeamSets[ctx.beam_set.DicomPlanLabel]
        # asked for and where the TPS has reference doses, the exact per-voxel limits, except for
        # organs with a volume budget (the esophagus' D1cc): zones can spend it, a MaxRefDose not
        by_reference: Dict[str, Any] = {}
        if settings.reference_doses and has_reference_functions(ctx.case, new_plan.PlanOptimizations[0]):
            by_reference = {k: ol for k, ol in limits.items() if not spends_volume(ol)}
        zones = build_reference_limits(ctx, ctx.case.PatientModel, ctx.examination, new_bs.FractionDose, grid,
                                       g.case, protocol, by_reference, g.prior_objects,
                                       margin_gy=settings.margin_gy) if by_reference else []
        zones += build_zones(ctx, ctx.case.PatientModel, ctx.examination, new_bs.FractionDose, grid, g.case,
                             protocol, {k: ol for k, ol in limits.items() if k not in by_reference},
                             g.prior_objects, margin_gy=settings.margin_gy)
        if settings.exempt_volume:
            zones += add_exemptions(zones, g.case, limits, fraction=settings.exempt_fraction,
                                    near_gy=settings.exempt_near_gy)
        po = new_plan.PlanOptimizations[0]
        ss = ctx.case.PatientModel.StructureSets[ctx.examination.Name]
        replaced = replace_copied_constraints(
            po, zones, g.case, lambda roi: roi_mask(ss, roi, new_bs.FractionDose, grid))
        replaced_objectives = replace_copied_target_objectives(
            po, g.case, protocol, zones, lambda roi: roi_mask(ss, roi, new_bs.FractionDose, grid)) \
            if settings.replace_target_objectives else []
        with step("set the optimization's maximum number of iterations"):
            po.OptimizationParameters.Algorithm.MaxNumberOfIterations = settings.max_iterations
        target_rois: Tuple[str, Optional[str]] = (g.case.structures[protocol.prescription.target].name, None)
        if settings.target_design == "split_distance":
            target_rois = split_by_distance(ctx.case.PatientModel, ctx.examination, zones, g.case, protocol,
                                            settings)
        target_functions = add_target_functions(po, g.case, protocol, settings, target_rois)
        add_zone_functions(po, zones, g.case, protocol, settings)
        if settings.anticipate_subvoxel:     # a plan without dose reads zeros: no gap
            with step("margins for the sub-voxel gap of the plan as loaded"):
                near_max = [z for z in zones if z.dvh_percent is not None]
                for z, need in cover_subvoxel_gaps(near_max, subvoxel_gap(evaluate_protocol(g.case, protocol)),
                                                   settings):
                    set_zone_level(z)
                    _LOG.info("zone %s: margin %.2f Gy (sub-voxel gap of the plan as loaded)", z.roi_name, need)
        best: Optional[Dict[str, Any]] = None
        floors: Dict[str, float] = {}     # zone margins the sub-voxel rule showed are needed
        stop_reason = "maximum number of optimizations reached"
        def run_and_evaluate(it: int) -> Dict[str, Any]:
            nonlocal calls
            if settings.reset_each_run:   # every run from the same start: slower, history-free
                with step(f"ResetOptimization before run {it}"):
                    po.ResetOptimization()
            with step(f"RunOptimization {it}"):
                po.RunOptimization()
            calls += 1
            dose = read_dose_gy(new_bs.FractionDose, f"beam set {new_bs.DicomPlanLabel!r} of {new_name!r}", grid) * fx
            case_it = PlanCase(grid, g.case.structures, DoseCourse(dose, grid, fx, new_name), g.case.priors,
                              g.case.fine_coverage)
            ev = evaluate_protocol(case_it, protocol)
            cov = ptv_coverage(dose, g.case, protocol)
            below = compute_dvh(dose, g.case.structures[protocol.prescription.target]).v_percent(
                protocol.prescription.dose_gy - settings.adapt_dvh_below_gy)
            failed = [r.constraint_id for r in ev.failures()]
            entry = {"v_below_rx_percent": below, "iteration": it, "run_optimization_calls": calls, "all_pass": ev.all_pass,
                     "coverage_goals_met": ev.coverage_goals_met,
                     "ptv_eval": cov, "worst_margin": worst_margins(ev),
                     "zone_levels_gy": {z.key: z.level_gy() for z in zones},
                     "zone_excess_gy": {z.key: z.excess_gy(dose) for z in zones},
                     "failures": failed, "changes": [],
                     "exemption_failures": exemption_failures(failed, protocol, limits),
                     "subvoxel_excess_gy": _merged_max(subvoxel_excess(ev),
                                                       cumulative_excess(ev, protocol, fx, dose, g.case.structures)),
                     "subvoxel_gap_gy": subvoxel_gap(ev),
                     "metric_excess_gy": metric_excess(ev)}
            log.append(entry)
            _LOG.info("optimization %d: PTVeval V%gGy %.1f %%, D95 %.2f Gy, protocol %s", it,
                      protocol.prescription.dose_gy, cov["v_rx_percent"], cov["d95_gy"],
                      "pass" if ev.all_pass else "FAIL (" + ", ".join(entry["failures"]) + ")")
            return entry

        split_done = False
        dvh_percent = settings.target_dvh_percent
        for it in range(1, config.max_optimizations + 1):
            _progress(api, f"reirrad: optimization {it} of at most {config.max_optimizations}",
                      int(100 * (it - 1) / config.max_optimizations))
            entry = run_and_evaluate(it)
            if not entry["all_pass"]:
                tighten_failing_zones(zones, entry, settings, floors)
                if not entry["changes"]:
                    stop_reason = "a constraint fails that no zone controls: " + ", ".join(entry["failures"])
                    break
            elif settings.target_design == "split_dose" and not split_done:
                split_done = True
                entry["changes"].append(replace_target_by_dose_split(
                    po, ctx.case.PatientModel, ctx.examination, new_bs.FractionDose, fx, g.case, protocol, settings,
                    target_functions))
            elif not split_done and adapt_min_dvh_wanted(entry, settings):
                split_done = True
                cov = entry["ptv_eval"]
                best = _passing_run(it, cov, zones, settings.target_dvh_percent)
                percent = adapted_min_dvh_percent(entry, settings)
                with step(f"set the PTVeval MinDvh volume to {percent:.1f} %"):
                    target_functions[0].DoseFunctionParameters.PercentVolume = percent
                dvh_percent = percent
                entry["changes"].append(f"MinDvh volume {percent:.1f} % (V{protocol.prescription.dose_gy - settings.adapt_dvh_below_gy:g}Gy of run {it})")
            else:
                cov = entry["ptv_eval"]
                gain = cov["v_rx_percent"] - (best["ptv_eval"]["v_rx_percent"] if best else -np.inf)
                if best is None or gain >= settings.min_gain_percent:
                    best = _passing_run(it, cov, zones, dvh_percent)
                else:
                    stop_reason = f"all constraints pass; coverage gain {gain:.2f} % < {settings.min_gain_percent} %"
                    break
                if not settings.relax_margins:
                    stop_reason = "all constraints pass"
                    break
                relax_binding_zones(zones, entry, settings, floors)
                if not entry["changes"]:
                    stop_reason = "all constraints pass; nothing left to relax"
                    break
            if settings.anticipate_subvoxel:
                for z, need in cover_subvoxel_gaps(zones, entry["subvoxel_gap_gy"], settings, floors):
                    entry["changes"].append(f"margin of {z.key} {need:.2f} Gy (sub-voxel gap)")
            if it == config.max_optimizations:
                break
            with step(f"update zone levels after optimization {it}"):
                for z in zones:
                    set_zone_level(z)
                    z.history.append(z.level_gy())
        last = log[-1]
        worse = last["all_pass"] and best is not None and \
            last["ptv_eval"]["v_rx_percent"] < best["ptv_eval"]["v_rx_percent"] - settings.min_gain_percent
        if best is not None and best["iteration"] != last["iteration"] and (not last["all_pass"] or worse):
            stop_reason += (f"; the last run {'failed' if not last['all_pass'] else 'covered less'}, so the zone "
                            f"levels of run {best['iteration']} were restored and re-optimized")
            with step("restore the best passing zone levels"):
                for z in zones:
                    z.margin_gy, z.exempt_cc, z.dvh_percent = best["zones"][z.key]
                    set_zone_level(z)
                    z.history.append(z.level_gy())
                if settings.target_design == "min_dvh" and best["dvh_percent"] != dvh_percent:
                    target_functions[0].DoseFunctionParameters.PercentVolume = best["dvh_percent"]
            run_and_evaluate(len(log) + 1)["changes"].append(f"restored the zone levels of run {best['iteration']}")
        _add_goals(new_plan.TreatmentCourse.EvaluationSetup, g.case, protocol, zones)
    _progress(api, "reirrad: optimization finished", 100)
    new_plan.SetCurrent()
    new_bs.SetCurrent()
    final = gather(api, config, protocol)
    ev = evaluate_protocol(final.case, protocol)
    record = assessment_record(final, protocol, ev, config)
    record["kind"] = "optimization"
    record["source_plan"] = ctx.plan.Name
    record["optimized_plan"] = new_name
    record["run_optimization_calls"] = calls
    record["stop_reason"] = stop_reason
    record["tuning_log"] = log
    record["zones"] = [{"roi": z.roi_name, "organ": z.organ, "kind": z.kind, "created": z.created, "objective": z.soft,
                        "max_dvh_percent": z.dvh_percent, "exempt_cc": z.exempt_cc,
                        "final_level_gy": z.level_gy(), "level_history_gy": z.history} for z in zones]
    record["limit_sources"] = {k: list(v.sources) for k, v in limits.items()}
    record["replaced_constraints"] = replaced
    record["replaced_objectives"] = replaced_objectives
    record["target_design"] = settings.target_design
    record["ptv_eval"] = ptv_coverage(final.case.sbrt.dose_gy, final.case, protocol)
    lines = assessment_report(record, title="reirrad optimization")
    lines += ["", f"optimized plan {new_name!r} (copy of {ctx.plan.Name!r}); RunOptimization calls: {calls}",
              f"stop: {stop_reason}"]
    if replaced:
        lines.append("constraints of the source plan replaced by the limit zones in the copy (the source plan keeps "
                     "them): " + "; ".join(f"{c['roi']} {c['function']}" + (f" {c['dose_level_gy']:.2f} Gy"
                                                                          if "dose_level_gy" in c else "")
                                           for c in replaced))
    lines.append("tuning log:")
    for e in log:
        lines.append(f"  {e['iteration']}: V{protocol.prescription.dose_gy:g}Gy {e['ptv_eval']['v_rx_percent']:.1f} %, "
                     f"D95 {e['ptv_eval']['d95_gy']:.2f} Gy, {'pass' if e['all_pass'] else 'FAIL'}; "
                     + ("; ".join(e["changes"]) or "no change"))
    path = write_record("optimization", record, lines, config.output_directory())
    return path, record


def _passing_run(it: int, coverage: Dict[str, float], zones: List[Zone], dvh_percent: float) -> Dict[str, Any]:
    """What the loop restores of a passing run: per zone its margin, exempt volume and MaxDvh
    volume, and the PTVeval MinDvh volume."""
    return {"iteration": it, "ptv_eval": coverage, "dvh_percent": dvh_percent,
            "zones": {z.key: (z.margin_gy, z.exempt_cc, z.dvh_percent) for z in zones}}


def _merged_max(a: Dict[str, float], b: Dict[str, float]) -> Dict[str, float]:
    return {k: max(a.get(k, 0.0), b.get(k, 0.0)) for k in set(a) | set(b)}


def _progress(api: Any, message: str, percent: int) -> None:
    fn = getattr(api, "set_progress", None)
    if fn is not None:
        fn(message, percentage=max(0, min(100, percent)))


def main(config_path: Optional[str] = None) -> str:
    """Entry of ``reirrad_optimize.py``: prints a summary, then the record path as the last line."""
    config = load_config(config_path)
    path, record = run_optimization(config=config)
    print(f"reirrad: optimized plan {record['optimized_plan']!r}, {record['run_optimization_calls']} "
          f"RunOptimization call(s); PTVeval V{24:g}Gy {record['ptv_eval']['v_rx_percent']:.1f} %")
    for line in summary_lines(record):
        print(line)
    print(path)
    return path
