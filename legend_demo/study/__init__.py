"""Reader studies: blinded, randomised rating sessions stored in SQLite, with exports and analysis.

One concept per module: schema/db (storage), manifest (what is rated), readers (accounts),
assignment (each reader's blinded order), sessions (expiring login tokens and resume), throttle (login
lockouts), auth (logging in readers and the admin), ratings (submissions), reading (the next case, skipping
flagged ones), flags (cases that cannot be shown), images (fingerprints and blinded display PNGs), screen
(the rendered next screen), analysis (statistics), summary (the admin's view), export (CSV and iMRMC),
demo (a ready-made synthetic study), generate (engines). The web server is legend_demo.ui.study_server.
"""
