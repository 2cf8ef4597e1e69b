"""Reader studies: blinded, randomised rating sessions stored in SQLite, with exports and analysis.

One concept per module: schema/db (storage), manifest (what is rated), readers (accounts),
assignment (each reader's blinded order), sessions (expiring login tokens and resume), throttle (login
lockouts), auth (logging in readers and the admin), ratings (submissions), reading (the next case, skipping
flagged ones), flags (cases that cannot be shown), images (fingerprints and blinded display PNGs), screen
(the rendered next screen), drafts (unsubmitted answers kept per case), timing (active time per case),
analysis (statistics), summary (the admin's view and reader progress), export (CSV and iMRMC with its key),
demo (ready-made synthetic studies), generate (engines). The web server is legend_demo.ui.study_server; the
pages are legend_demo.ui.study_app and the admin's downloads legend_demo.ui.study_exports.
"""
