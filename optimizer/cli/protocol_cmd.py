"""``reirrad protocol show`` and ``reirrad protocol cord-limit``."""
from __future__ import annotations

import argparse

from constraints.protocol import load_protocol

from ._output import print_json, print_table


def register(sub) -> None:
    p = sub.add_parser("protocol", help="show a protocol, or look up its cord-PRV limit")
    psub = p.add_subparsers(dest="protocol_command", metavar="ACTION", parser_class=type(p))
    psub.required = True
    show = psub.add_parser("show", help="the protocol's organs, limits and goals")
    show.add_argument("name", nargs="?", default="koide2024", help="built-in name or path to a .toml file")
    show.add_argument("--json", action="store_true")
    show.add_argument("--verbatim", action="store_true", help="print the protocol file as written")
    show.set_defaults(handler=run_show)
    cord = psub.add_parser("cord-limit", help="cord PRV SBRT-only D0.035cc limit for a prior cord BED (Gy2)",
                           description="The binding limit: the lower of the protocol's table and its generalized "
                                       "re-irradiation rule (koide2024: Sahgal 2012), with the rule that binds.")
    cord.add_argument("--prior-bed", type=float, required=True, metavar="GY2",
                      help="prior cord PRV Dmax BED (alpha/beta 2), summed over ALL prior courses without recovery")
    cord.add_argument("--fractions", type=int, metavar="N", help="fractions of the new course (default: the protocol's)")
    cord.add_argument("--interval-months", type=float, metavar="M",
                      help="months since the last prior course (unknown when not given)")
    cord.add_argument("--protocol", default="koide2024")
    cord.add_argument("--json", action="store_true")
    cord.set_defaults(handler=run_cord_limit)


def protocol_to_dict(proto) -> dict:
    return {
        "name": proto.name,
        "version": proto.version,
        "title": proto.title,
        "source": proto.source,
        "notes": proto.notes,
        "sha256": proto.sha256,
        "prescription": {"target": proto.prescription.target, "dose_gy": proto.prescription.dose_gy,
                         "fractions": proto.prescription.fractions,
                         "allowed_fractions": list(proto.prescription.allowed_fractions)},
        "organs": {k: {"display_name": o.display_name, "kind": o.kind, "alpha_beta_gy": o.alpha_beta_gy,
                       "aliases": list(o.aliases)} for k, o in proto.organs.items()},
        "constraints": [{"id": c.id, "organ": c.organ, "metric": c.metric.text, "domain": c.domain,
                         "comparison": c.comparison, "limit": c.limit, "limit_table": c.limit_table,
                         "unit": c.unit, "priority": c.priority, "advisory": c.advisory,
                         "recovery_allowed": c.recovery_allowed}
                        for c in proto.constraints],
        "tables": {k: {"description": t.description, "input_organ": t.input_organ,
                       "input_metric": t.input_metric.text, "input_alpha_beta_gy": t.input_alpha_beta_gy,
                       "rows": [list(r) for r in t.rows], "above": t.above, "unit": t.unit,
                       "recovery_allowed": t.recovery_allowed}
                   for k, t in proto.tables.items()},
        "reirradiation_rules": {k: {"label": r.label, "applies_to": r.applies_to, "alpha_beta_gy": r.alpha_beta_gy,
                                    "cumulative_max_eqd2_gy": r.cumulative_max_eqd2_gy,
                                    "sbrt_max_eqd2_gy": r.sbrt_max_eqd2_gy,
                                    "max_sbrt_to_cumulative_ratio": r.max_sbrt_to_cumulative_ratio,
                                    "min_interval_months": r.min_interval_months, "source": r.source}
                                for k, r in proto.rules.items()},
        "coverage_goals": [{"id": g.id, "organ": g.organ, "metric": g.metric.text, "comparison": g.comparison,
                            "value": g.value, "unit": g.unit} for g in proto.coverage_goals],
    }


def run_show(args: argparse.Namespace) -> int:
    proto = load_protocol(args.name)
    if args.verbatim:
        print(proto.text, end="")
        return 0
    if args.json:
        print_json(protocol_to_dict(proto))
        return 0
    print(f"{proto.name} v{proto.version}: {proto.title}")
    print(f"source: {proto.source}")
    print(f"prescription: {proto.prescription.dose_gy:g} Gy in {proto.prescription.fractions} fractions "
          f"to {proto.organs[proto.prescription.target].display_name} (beam sets with other than "
          f"{'/'.join(str(n) for n in proto.prescription.allowed_fractions)} fractions are refused)")
    print()
    print_table(["organ", "metric", "domain", "limit", "unit", "priority", "note"],
                [[proto.organs[c.organ].display_name, c.metric.text, c.domain, f"{c.comparison} "
                  + (f"{c.limit:g}" if c.limit is not None else f"table {c.limit_table}"), c.unit, c.priority,
                  ", ".join(x for x in ("advisory" if c.advisory else "",
                                        "recovery allowed" if c.recovery_allowed else
                                        ("no recovery" if c.domain.is_cumulative else ""),
                                        f"bounded by rule {proto.rule_for(c).key}" if proto.rule_for(c) else "")
                            if x)] for c in proto.constraints], title="constraints")
    for t in proto.tables.values():
        print()
        print_table([f"prior {t.input_metric.text} BED (a/b {t.input_alpha_beta_gy:g}) <=", f"limit ({t.unit})"],
                    [[f"{b:g}", f"{v:g}"] for b, v in t.rows] + [["above", f"{t.above:g}"]],
                    title=f"table {t.key}: {t.description}")
    for r in proto.rules.values():
        print()
        print(f"re-irradiation rule {r.key} ({r.label}) bounds {r.applies_to}: cumulative <= "
              f"{r.cumulative_max_eqd2_gy:g} Gy EQD2, SBRT alone <= {r.sbrt_max_eqd2_gy:g} Gy EQD2, SBRT/cumulative "
              f"<= {r.max_sbrt_to_cumulative_ratio:g}, >= {r.min_interval_months:g} months between courses "
              f"(a/b {r.alpha_beta_gy:g}); the lower of table and rule binds. Source: {r.source}")
    print()
    print_table(["organ", "metric", "goal", "unit"],
                [[proto.organs[g.organ].display_name, g.metric.text, f"{g.comparison} {g.value:g}", g.unit]
                 for g in proto.coverage_goals], title="coverage goals (reirrad defaults)")
    print()
    print_table(["organ", "alpha/beta (Gy)", "ROI aliases"],
                [[o.display_name, o.alpha_beta_gy, ", ".join(o.aliases)] for o in proto.organs.values()],
                title="organs")
    if proto.notes:
        print()
        print(f"notes: {proto.notes}")
    return 0


def run_cord_limit(args: argparse.Namespace) -> int:
    from constraints.errors import InputError, ProtocolError
    from constraints.reirradiation_rule import binding_limit

    proto = load_protocol(args.protocol)
    found = [c for c in proto.constraints if c.limit_table is not None and c.organ == "spinal_cord_prv"]
    if not found:
        raise ProtocolError(f"protocol {proto.name!r} has no table-based cord PRV limit")
    c = found[0]
    table = proto.tables[c.limit_table]
    fractions = args.fractions if args.fractions is not None else proto.prescription.fractions
    if fractions not in proto.prescription.allowed_fractions:
        raise InputError(f"--fractions {fractions}: protocol {proto.name!r} holds for "
                         f"{proto.prescription.allowed_fractions} fraction(s) only")
    if args.interval_months is not None and not args.interval_months >= 0:
        raise InputError(f"--interval-months must be >= 0, got {args.interval_months!r}")
    b = binding_limit(proto, c, args.prior_bed, fractions, has_prior=args.prior_bed > 0,
                      interval_months=args.interval_months)
    rule = proto.rule_for(c)
    payload = {"limit_gy": b.limit_gy, "binding_rule": b.rule, "exhausted": b.exhausted,
               "eligible": not b.exhausted and not b.conditions_failed,
               "candidates_gy": b.candidates, "conditions": b.conditions, "table_limit_gy": b.candidates["table"],
               "prior_bed": args.prior_bed, "alpha_beta": table.input_alpha_beta_gy, "fractions": fractions,
               "protocol": proto.name, "protocol_version": proto.version, "table": table.key,
               "rule": rule.key if rule else None, "rule_source": rule.source if rule else None,
               "metric": c.metric.text, "domain": c.domain}
    if b.exhausted:
        payload["message"] = (f"prior cord BED {args.prior_bed:g} Gy2 reaches the cumulative limit "
                              f"({rule.cumulative_max_eqd2_gy:g} Gy EQD2 = "
                              f"{rule.cumulative_max_eqd2_gy * (1 + 2 / rule.alpha_beta_gy):g} Gy2 BED, {rule.label}): "
                              "no cord tolerance left, not eligible for re-irradiation SBRT")
    if args.json:
        print_json(payload)
    else:
        print(f"prior cord BED {args.prior_bed:g} Gy{table.input_alpha_beta_gy:g} -> cord PRV SBRT-only "
              f"{c.metric.text} <= {b.limit_gy:.2f} Gy in {fractions} fx, binding rule: {b.rule} "
              f"({proto.name} v{proto.version})")
        print("  " + ", ".join(f"{k} {'-' if v is None else format(v, '.2f')} Gy" for k, v in b.candidates.items()))
        for k, v in b.conditions.items():
            print(f"  {k}: {v}")
        if b.exhausted:
            print(f"NOT ELIGIBLE: {payload['message']}")
    return 0
