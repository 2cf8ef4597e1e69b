"""`python -m legend_demo study …`: create a reader study, add readers, export and summarise ratings, write a demo."""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import closing

from .. import settings, sharding
from ..study.auth import ADMIN_PASSWORD_ENV


def register(subparsers) -> None:
    parser = subparsers.add_parser("study", help="blinded reader studies (create, add-reader, export, summary, flags, demo-manifest)")
    actions = parser.add_subparsers(dest="study_command", required=True)

    create = actions.add_parser("create", help="validate a manifest and store the study in a new SQLite database")
    create.add_argument("--manifest", required=True, help="CSV or JSON manifest, or a folder of ICG-CXR-style pair folders")
    create.add_argument("--db", required=True, help="new SQLite database file")
    create.add_argument("--allow-changes", action="store_true", help="readers may change a submitted rating")
    create.add_argument("--pair-mode", action="store_true", help="show each case's two candidates side by side")
    create.add_argument("--admin-password", default=None, help=f"password of the admin tab (or set {ADMIN_PASSWORD_ENV})")
    create.add_argument("--generate", action="store_true", help="generate candidates that have a source but no path")
    create.add_argument("--engine", default=None, help="engine for --generate (default: the first available)")
    create.add_argument("--generate-source", default=None, help="with --generate: add a candidate with this source to every case lacking one")
    create.add_argument("--seed", type=int, default=None, help="study seed for the readers' orders (default: random)")
    create.set_defaults(func=_create)

    add_reader = actions.add_parser("add-reader", help="create a reader account (password stored hashed)")
    add_reader.add_argument("--db", required=True)
    add_reader.add_argument("--name", required=True)
    add_reader.add_argument("--password", required=True)
    add_reader.set_defaults(func=_add_reader)

    export = actions.add_parser("export", help="admin CSV of every rating with unblinded sources (+ iMRMC input)")
    export.add_argument("--db", required=True)
    export.add_argument("--out", required=True, help="CSV file to write")
    export.add_argument("--imrmc", default=None, help="also write an iMRMC input file for the real-vs-synthetic task")
    export.set_defaults(func=_export)

    summary = actions.add_parser("summary", help="per-source means with 95%% CIs, Turing-test accuracy, agreement")
    summary.add_argument("--db", required=True)
    summary.add_argument("--json", action="store_true", help="machine-readable output")
    summary.set_defaults(func=_summary)

    flags = actions.add_parser("flags", help="cases skipped because a file went missing, changed or broke (admin)")
    flags.add_argument("--db", required=True)
    flags.add_argument("--clear", metavar="CASE", default=None, help="show a repaired case again (its files are re-checked)")
    flags.set_defaults(func=_flags)

    demo = actions.add_parser("demo-manifest", help="write a small ready-made study of SYNTHETIC chest drawings")
    demo.add_argument("--out", required=True, help="folder to write (pair folders + manifest.json)")
    demo.set_defaults(func=_demo)


def _create(args: argparse.Namespace) -> int:
    from ..study.generate import generate_missing, missing_count
    from ..study.manifest import read_manifest, validate_manifest, with_generated_candidates
    from ..study.studies import create_study

    manifest = read_manifest(args.manifest)
    if args.generate_source:
        if not args.generate:
            raise ValueError("--generate-source needs --generate")
        manifest = with_generated_candidates(manifest, args.generate_source)
    validate_manifest(manifest, pair_mode=args.pair_mode, allow_missing=args.generate)  # all problems before any work
    shard = sharding.current()  # under torchrun the ranks share the generation; rank 0 stores the study
    if args.generate and missing_count(manifest):
        manifest = generate_missing(manifest, args.engine, log=lambda line: print(line, file=sys.stderr), shard=shard)
    if not shard.is_main:
        return 0
    admin_password = args.admin_password or settings.get(ADMIN_PASSWORD_ENV) or None
    study = create_study(
        args.db, manifest, allow_changes=args.allow_changes, pair_mode=args.pair_mode, admin_password=admin_password, seed=args.seed,
    )
    candidates = sum(len(c.candidates) for c in manifest.cases)
    print(f"created study {study.name!r} in {args.db}: {len(manifest.cases)} cases, {candidates} candidates"
          f"{', pair mode' if study.pair_mode else ''}{', changes allowed' if study.allow_changes else ''}")
    if not study.has_admin_password:
        print(f"note: no admin password set; the admin tab stays locked unless {ADMIN_PASSWORD_ENV} is set", file=sys.stderr)
    return 0


def _add_reader(args: argparse.Namespace) -> int:
    from ..study.db import connect
    from ..study.reading import progress
    from ..study.readers import add_reader

    with closing(connect(args.db)) as conn:
        reader_id = add_reader(conn, args.name, args.password)
        print(f"added reader {args.name.strip()!r} with {progress(conn, reader_id)[1]} cases to read")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..study.db import connect
    from ..study.export import export_csv, export_imrmc

    with closing(connect(args.db)) as conn:
        rows = export_csv(conn, args.out)
        print(f"wrote {rows} ratings to {args.out}")
        if args.imrmc:
            scores = export_imrmc(conn, args.imrmc)
            print(f"wrote iMRMC input with {scores} reader scores to {args.imrmc}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from ..study.db import connect
    from ..study.summary import summarise

    with closing(connect(args.db)) as conn:
        summary = summarise(conn)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
        return 0
    print(format_summary(summary))
    return 0


def format_summary(summary) -> str:
    """Plain-text table of the summary (means with 95% CIs)."""
    rows = summary.table()
    lines = [f"readers: {summary.readers}   ratings: {summary.ratings}   overall Turing-test accuracy: {summary.turing_accuracy.as_text()}"]
    if rows:
        headers = list(rows[0])
        widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in headers]
        lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
        lines += ["  ".join(str(r[h]).ljust(w) for h, w in zip(headers, widths)) for r in rows]
    kappa = summary.fleiss_kappa_real_vs_synthetic
    lines.append(f"Fleiss' kappa (real/synthetic call, {summary.agreement_candidates} images read by every reader): "
                 + ("–" if kappa != kappa else f"{kappa:.3f}"))
    lines.append("ICC(2,1): " + ", ".join(f"{k} " + ("–" if v != v else f"{v:.3f}") for k, v in summary.icc_2_1.items()))
    return "\n".join(lines)


def _flags(args: argparse.Namespace) -> int:
    from ..study.db import connect
    from ..study.flags import clear_flag, flagged_cases

    with closing(connect(args.db)) as conn:
        if args.clear:
            clear_flag(conn, args.clear)
            print(f"case {args.clear!r} is shown to readers again")
            return 0
        flags = flagged_cases(conn)
    for flag in flags:
        print(f"{flag['case']}\t{flag['flagged_at']}\t{flag['reason']}")
    if not flags:
        print("no flagged cases")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ..study.demo import write_demo_study

    manifest = write_demo_study(args.out)
    print(f"wrote a demo study of SYNTHETIC drawings to {manifest}")
    print(f"next: python -m legend_demo study create --manifest {manifest} --db study.db --admin-password <choose one>")
    return 0
