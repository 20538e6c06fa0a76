"""``reirrad bio`` and ``reirrad limit``: the LQ calculator and the single-voxel limit."""
from __future__ import annotations

import argparse
import re
from typing import List, Tuple

import numpy as np

from constraints.domain import DoseDomain
from constraints.errors import InputError
from constraints.lq import bed, dose_from_bed, dose_from_eqd2, eqd2
from optimizer.limit_map import limit_from_prior_bed

from ._output import print_json, print_table


def register(sub) -> None:
    p = sub.add_parser("bio", help="BED/EQD2 of a dose, or the dose giving a BED/EQD2",
                       description="LQ calculator. D is the total dose of the voxel over n fractions.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dose", type=float, metavar="GY", help="total physical dose, Gy")
    src.add_argument("--bed", type=float, metavar="GY", help="BED (of the single --alpha-beta), Gy")
    src.add_argument("--eqd2", type=float, metavar="GY", help="EQD2 (of the single --alpha-beta), Gy")
    p.add_argument("--fractions", type=int, required=True, metavar="N")
    p.add_argument("--alpha-beta", type=float, nargs="+", required=True, metavar="GY", dest="alpha_beta")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run_bio)

    q = sub.add_parser("limit", help="highest new physical dose of one voxel under a cumulative BED limit",
                       description="L = D(max(X - sum (1-r_i) BED_i, 0); n). Priors as DOSE/FRACTIONS[@RECOVERY]. "
                                   "With --constraint the limit, alpha/beta and recovery rule come from the protocol.")
    q.add_argument("--prior", action="append", required=True, metavar="DOSE/FX[@R]",
                   help="a prior course: total Gy / fractions, optional recovery fraction; repeat per course")
    q.add_argument("--constraint", metavar="ID",
                   help="a cumulative constraint of the protocol (e.g. esophagus_cum_dmax): its limit, alpha/beta "
                        "and recovery rule (a recovery it forbids is refused)")
    q.add_argument("--protocol", default="koide2024", help="protocol of --constraint (default koide2024)")
    q.add_argument("--alpha-beta", type=float, metavar="GY", dest="alpha_beta",
                   help="alpha/beta, Gy (required without --constraint)")
    q.add_argument("--limit-bed", type=float, metavar="GY",
                   help="cumulative limit X, BED (required without --constraint; its recovery rule is then yours)")
    q.add_argument("--fractions", type=int, metavar="N",
                   help="fractions of the new course (required without --constraint; default: the protocol's)")
    q.add_argument("--cap-gy", type=float, metavar="GY", help="SBRT-only physical cap, Gy")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=run_limit)


def run_bio(args: argparse.Namespace) -> int:
    abs_ = list(args.alpha_beta)
    if args.dose is not None:
        dose = args.dose
    else:
        if len(abs_) != 1:
            raise InputError("--bed/--eqd2 need exactly one --alpha-beta (the one the value was computed with)")
        if args.bed is not None:
            dose = float(dose_from_bed(args.bed, args.fractions, abs_[0]))
        else:
            dose = float(dose_from_eqd2(args.eqd2, args.fractions, abs_[0]))
    results = [{"alpha_beta": float(ab), "bed": float(bed(dose, args.fractions, ab)),
                "eqd2": float(eqd2(dose, args.fractions, ab))} for ab in abs_]
    payload = {"dose_gy": dose, "fractions": args.fractions, "results": results}
    if args.json:
        print_json(payload)
    else:
        print_table(["alpha/beta (Gy)", "BED (Gy)", "EQD2 (Gy)"],
                    [[r["alpha_beta"], r["bed"], r["eqd2"]] for r in results],
                    title=f"{dose:.2f} Gy in {args.fractions} fractions ({dose / args.fractions:.2f} Gy/fx)")
    return 0


_PRIOR = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*/\s*([0-9]+)\s*(?:@\s*([0-9]*\.?[0-9]+))?\s*$")


def parse_prior(text: str) -> Tuple[float, int, float]:
    """Parse ``DOSE/FRACTIONS[@RECOVERY]`` (e.g. ``60/30`` or ``20/5@0.25``)."""
    m = _PRIOR.match(text)
    if not m:
        raise InputError(f"--prior {text!r} must look like DOSE/FRACTIONS or DOSE/FRACTIONS@RECOVERY, e.g. 60/30@0.25")
    dose, fx, rec = float(m.group(1)), int(m.group(2)), float(m.group(3) or 0.0)
    if fx < 1:
        raise InputError(f"--prior {text!r}: fractions must be >= 1")
    if not 0 <= rec < 1:
        raise InputError(f"--prior {text!r}: recovery must be in [0, 1)")
    return dose, fx, rec


RAW_LIMIT_WARNING = ("raw --limit-bed: whether recovery may discount the prior under this limit is your "
                     "responsibility (koide2024's esophageal limits and cord table were derived without recovery); "
                     "use --constraint ID to apply a protocol's rule")


def _from_constraint(args: argparse.Namespace, priors: List[Tuple[float, int, float]]) -> dict:
    """Limit, alpha/beta, fractions and recovery rule of a protocol constraint (or refuse)."""
    from constraints.errors import InputError as _InputError
    from constraints.protocol import load_protocol
    proto = load_protocol(args.protocol)
    found = [c for c in proto.constraints if c.id == args.constraint]
    if not found:
        cum = [c.id for c in proto.constraints if c.domain.is_cumulative]
        raise _InputError(f"--constraint {args.constraint!r} is not a constraint of protocol {proto.name!r}; "
                          f"cumulative constraints: {', '.join(cum)}")
    c = found[0]
    if not c.domain.is_cumulative or c.limit is None:
        hint = " (for the cord table use 'reirrad protocol cord-limit')" if c.limit_table else ""
        raise _InputError(f"--constraint {c.id!r} is a {c.domain} limit, not a cumulative one: no prior dose enters "
                          f"it{hint}")
    ab = proto.organs[c.organ].alpha_beta_gy
    x = c.limit if c.domain is DoseDomain.CUMULATIVE_BED else c.limit * (1.0 + 2.0 / ab)
    for opt, given, value in (("--alpha-beta", args.alpha_beta, ab), ("--limit-bed", args.limit_bed, x)):
        if given is not None and abs(given - value) > 1e-9:
            raise _InputError(f"{opt} {given:g} contradicts constraint {c.id!r} of {proto.name!r} ({value:g}); "
                              f"leave {opt} out")
    fractions = args.fractions if args.fractions is not None else proto.prescription.fractions
    if fractions not in proto.prescription.allowed_fractions:
        raise _InputError(f"--fractions {fractions}: protocol {proto.name!r} holds for "
                          f"{proto.prescription.allowed_fractions} fraction(s) only")
    if not c.recovery_allowed:
        claimed = [f"{d:g}/{n}@{r:g}" for d, n, r in priors if r > 0]
        if claimed:
            raise _InputError(f"--prior {', '.join(claimed)}: constraint {c.id!r} of protocol {proto.name!r} forbids "
                              "recovery (its limit was derived from doses summed without recovery); give the prior "
                              "without @RECOVERY")
    return {"alpha_beta": ab, "limit_bed": x, "fractions": fractions, "constraint": c.id, "protocol": proto.name,
            "organ": c.organ, "comparison": c.comparison, "recovery_allowed": c.recovery_allowed}


def run_limit(args: argparse.Namespace) -> int:
    priors: List[Tuple[float, int, float]] = [parse_prior(p) for p in args.prior]
    warnings: List[str] = []
    source = {}
    if args.constraint is not None:
        source = _from_constraint(args, priors)
        args.alpha_beta, args.limit_bed, args.fractions = source["alpha_beta"], source["limit_bed"], source["fractions"]
    else:
        missing = [o for o, v in (("--alpha-beta", args.alpha_beta), ("--limit-bed", args.limit_bed),
                                  ("--fractions", args.fractions)) if v is None]
        if missing:
            raise InputError(f"give {', '.join(missing)}, or --constraint ID to take them from the protocol")
        warnings.append(RAW_LIMIT_WARNING)
    courses = []
    prior_bed = 0.0
    for dose, fx, rec in priors:
        b = float(bed(dose, fx, args.alpha_beta))
        courses.append({"dose_gy": dose, "fractions": fx, "recovery": rec, "bed": b, "bed_after_recovery": (1 - rec) * b})
        prior_bed += (1 - rec) * b
    limit, exhausted, capped = limit_from_prior_bed(np.array(prior_bed), alpha_beta_gy=args.alpha_beta,
                                                    cumulative_limit_bed_gy=args.limit_bed,
                                                    fractions=args.fractions, cap_gy=args.cap_gy)
    payload = {
        "limit_gy": float(limit),
        "prior_bed": prior_bed,
        "remaining_bed": args.limit_bed - prior_bed,
        "exhausted": bool(exhausted),
        "capped": bool(capped),
        "alpha_beta": args.alpha_beta,
        "limit_bed": args.limit_bed,
        "fractions": args.fractions,
        "cap_gy": args.cap_gy,
        "courses": courses,
        "warnings": warnings,
    }
    if source:
        payload["source"] = source
    if args.json:
        print_json(payload)
    else:
        print_table(["prior course", "BED (Gy)", "recovery", "counted BED (Gy)"],
                    [[f"{c['dose_gy']:g} Gy / {c['fractions']} fx", c["bed"], c["recovery"], c["bed_after_recovery"]]
                     for c in courses], title=f"alpha/beta = {args.alpha_beta:g} Gy, cumulative limit {args.limit_bed:g} Gy BED")
        note = " (no tolerance left)" if exhausted else (" (SBRT-only cap binds)" if capped else "")
        print(f"remaining BED {payload['remaining_bed']:.2f} Gy -> SBRT limit {payload['limit_gy']:.2f} Gy "
              f"in {args.fractions} fractions{note}")
        if source:
            print(f"limit from constraint {source['constraint']} of protocol {source['protocol']} "
                  f"({source['comparison']} {args.limit_bed:g} Gy BED, recovery "
                  f"{'allowed' if source['recovery_allowed'] else 'not allowed'})"
                  + ("; the limit is strict: the SBRT dose must stay below this value" if source["comparison"] == "<"
                     else ""))
        for w in warnings:
            print(f"warning: {w}")
    return 0
