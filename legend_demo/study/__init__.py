"""Reader studies: blinded, randomised rating sessions stored in SQLite, with exports and analysis.

One concept per module: schema/db (storage), manifest (what is rated), readers (accounts),
assignment (each reader's blinded order), sessions (login tokens and resume), ratings (submissions),
analysis (statistics), export (CSV and iMRMC), demo (a ready-made synthetic study), generate (engines).
"""
