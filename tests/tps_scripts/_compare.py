"""Deep comparison of mock patient snapshots: "only rr_ objects were added"."""


def _evaluation_dose_changes(cname, before, after):
    """Evaluation doses changed or removed, or added without the rr_ prefix."""
    if len(after) != len(before):
        return [f"{cname}: fraction evaluations changed"]
    problems = []
    for fb, fa in zip(before, after):
        for exam, doses in fb.items():
            now = fa.get(exam, {})
            problems += [f"{cname}: evaluation dose {n!r} on {exam} changed or removed"
                         for n, digest in doses.items() if now.get(n) != digest]
        for exam, now in fa.items():
            problems += [f"{cname}: added evaluation dose {n!r} on {exam} without the rr_ prefix"
                         for n in set(now) - set(fb.get(exam, {})) if not n.startswith("rr_")]
    return problems


def added_only_rr(before, after):
    """Return a list of differences other than added ``rr_`` ROIs, geometries, plans and evaluation doses."""
    problems = []
    if (before["name"], before["id"]) != (after["name"], after["id"]):
        problems.append("patient identity changed")
    for cname, b in before["cases"].items():
        a = after["cases"].get(cname)
        if a is None:
            problems.append(f"case {cname} removed")
            continue
        if a["examinations"] != b["examinations"]:
            problems.append(f"{cname}: examinations changed")
        problems += _evaluation_dose_changes(cname, b["evaluation_doses"], a["evaluation_doses"])
        for kind in ("rois", "plans"):
            for name, value in b[kind].items():
                if a[kind].get(name) != value:
                    problems.append(f"{cname}: {kind[:-1]} {name!r} changed or removed")
            for name in set(a[kind]) - set(b[kind]):
                if not name.startswith("rr_"):
                    problems.append(f"{cname}: added {kind[:-1]} {name!r} without the rr_ prefix")
        for exam, ssb in b["structure_sets"].items():
            ssa = a["structure_sets"][exam]
            if ssa["approval"] != ssb["approval"] or ssa["approved_rois"] != ssb["approved_rois"]:
                problems.append(f"{cname}: approval of structure set {exam} changed")
            for roi, digest in ssb["geometries"].items():
                if ssa["geometries"].get(roi) != digest:
                    problems.append(f"{cname}: geometry of {roi!r} changed")
            for roi in set(ssa["geometries"]) - set(ssb["geometries"]):
                if not roi.startswith("rr_"):
                    problems.append(f"{cname}: added geometry {roi!r} without the rr_ prefix")
    return problems
