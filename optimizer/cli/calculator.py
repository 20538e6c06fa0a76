"""``reirrad bio`` and ``reirrad limit``: the LQ calculator and the single-voxel limit."""
from __future__ import annotations

import argparse
import re
from typing import List, Tuple

import numpy as np

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
                       description="L = D(max(X - sum (1-r_i) BED_i, 0); n). Priors as DOSE/FRACTIONS[@RECOVERY].")
    q.add_argument("--prior", action="append", required=True, metavar="DOSE/FX[@R]",
                   help="a prior course: total Gy / fractions, optional recovery fraction; repeat per course")
    q.add_argument("--alpha-beta", type=float, required=True, metavar="GY", dest="alpha_beta")
    q.add_argument("--limit-bed", type=float, required=True, metavar="GY", help="cumulative limit X, BED")
    q.add_argument("--fractions", type=int, required=True, metavar="N", help="fractions of the new course")
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


def run_limit(args: argparse.Namespace) -> int:
    priors: List[Tuple[float, int, float]] = [parse_prior(p) for p in args.prior]
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
    }
    if args.json:
        print_json(payload)
    else:
        print_table(["prior course", "BED (Gy)", "recovery", "counted BED (Gy)"],
                    [[f"{c['dose_gy']:g} Gy / {c['fractions']} fx", c["bed"], c["recovery"], c["bed_after_recovery"]]
                     for c in courses], title=f"alpha/beta = {args.alpha_beta:g} Gy, cumulative limit {args.limit_bed:g} Gy BED")
        note = " (no tolerance left)" if exhausted else (" (SBRT-only cap binds)" if capped else "")
        print(f"remaining BED {payload['remaining_bed']:.2f} Gy -> SBRT limit {payload['limit_gy']:.2f} Gy "
              f"in {args.fractions} fractions{note}")
    return 0
