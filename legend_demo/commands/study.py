"""`python -m legend_demo study …`: create a reader study, add readers, export and summarise ratings, write a demo."""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import closing

from ..core import settings, sharding
from ..study.auth import ADMIN_PASSWORD_ENV


def register(subparsers) -> None:
    parser = subparsers.add_parser("study", help="blinded reader studies (create, add-reader, export, summary, flags, unlock, demo-manifest)")
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
    export.add_argument("--imrmc-key", default=None,
                        help="key file mapping iMRMC's reader/case/modality numbers back (default: <imrmc name>.key.csv)")
    export.set_defaults(func=_export)

    summary = actions.add_parser("summary", help="per-source means with 95%% CIs, Turing-test accuracy, agreement")
    summary.add_argument("--db", required=True)
    summary.add_argument("--json", action="store_true", help="machine-readable output")
    summary.set_defaults(func=_summary)

    flags = actions.add_parser("flags", help="cases skipped because a file went missing, changed or broke (admin)")
    flags.add_argument("--db", required=True)
    flags.add_argument("--clear", metavar="CASE", default=None, help="show a repaired case again (its files are re-checked)")
    flags.set_defaults(func=_flags)

    unlock = actions.add_parser("unlock", help="lift the login lock on a reader's name (or admin) at once (admin)")
    unlock.add_argument("--db", required=True)
    unlock.add_argument("--name", required=True, help="the name as typed at login (reader name or admin)")
    unlock.set_defaults(func=_unlock)

    demo = actions.add_parser("demo-manifest", help="write a small ready-made study: rendered pairs vs the default engine")
    demo.add_argument("--out", required=True, help="folder to write (pair folders + manifest.json)")
    demo.add_argument("--cases", type=int, default=4, help="pairs to render (each gives a real and a synthetic follow-up)")
    demo.add_argument("--size", type=int, default=256, help="rendered film size in pixels")
    demo.add_argument("--seed", type=int, default=0, help="generator seed (same seed, same pairs)")
    demo.add_argument("--engine", default=None, help="engine for the synthetic follow-ups (default: the app's default)")
    demo.add_argument("--drawings", action="store_true", help="instead: seconds-fast cartoon drawings with a blurred baseline")
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
    from ..study.export import default_key_path, export_csv, export_imrmc

    with closing(connect(args.db)) as conn:
        rows = export_csv(conn, args.out)
        print(f"wrote {rows} ratings to {args.out}")
        if args.imrmc:
            key = args.imrmc_key or default_key_path(args.imrmc)
            scores = export_imrmc(conn, args.imrmc, key)
            print(f"wrote iMRMC input with {scores} reader scores to {args.imrmc} (ids explained in {key})")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from ..study.db import connect
    from ..study.summary import reader_progress, summarise

    with closing(connect(args.db)) as conn:
        summary, progress = summarise(conn), reader_progress(conn)
    if args.json:
        print(json.dumps({**summary.to_dict(), "reader_progress": progress}, indent=2))
        return 0
    print(format_summary(summary))
    print()
    print(format_rows(progress) if progress else "no readers yet")
    return 0


def format_summary(summary) -> str:
    """Plain-text tables of the summary (means with 95% bootstrap intervals inside the scale, n per source)."""
    from ..study.summary import METHODS_NOTE

    lines = [f"readers: {summary.readers}   ratings: {summary.ratings}   overall Turing-test accuracy: "
             f"{summary.turing_accuracy.as_text(with_n=True)}"]
    for rows in (summary.table(), summary.answers_table()):
        if rows:
            lines += ["", format_rows(rows)]
    kappa = summary.fleiss_kappa_real_vs_synthetic
    lines.append("")
    lines.append(f"Fleiss' kappa (real/synthetic call, {summary.agreement_candidates} images read by every reader): "
                 + ("–" if kappa != kappa else f"{kappa:.3f}"))
    lines.append("ICC(2,1): " + ", ".join(f"{k} " + ("–" if v != v else f"{v:.3f}") for k, v in summary.icc_2_1.items()))
    lines.append(METHODS_NOTE)
    return "\n".join(lines)


def format_rows(rows: list[dict]) -> str:
    """Rows of equal keys as a plain-text table with padded columns."""
    headers = list(rows[0])
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in headers]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(str(r[h]).ljust(w) for h, w in zip(headers, widths)) for r in rows]
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


def _unlock(args: argparse.Namespace) -> int:
    from ..study.db import connect
    from ..study.throttle import unlock_name

    with closing(connect(args.db)) as conn:
        forgiven = unlock_name(conn, args.name)
    print(f"{args.name.strip()!r} may log in again from any device ({forgiven} recent failed logins no longer count)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ..study.demo import write_demo_study, write_rendered_demo

    if args.drawings:
        manifest = write_demo_study(args.out)
        print(f"wrote a demo study of SYNTHETIC drawings to {manifest}")
    else:
        manifest = write_rendered_demo(args.out, cases=args.cases, size=args.size, seed=args.seed, engine=args.engine,
                                       log=lambda line: print(line, file=sys.stderr))
        print(f"wrote a demo study of {args.cases} rendered pair(s) and engine-made follow-ups to {manifest}")
    print(f"next: python -m legend_demo study create --manifest {manifest} --db study.db --admin-password <choose one>")
    return 0
