"""The method (thesis chapters 4–5) as pure functions and small records, below every engine, model and interface.

GBCA: prior (eqs. 5.4–5.5), strength s(τ), processors (eqs. 5.6–5.7), sampling (eq. 5.8), the dual-path editor
(eqs. 5.9–5.10) with its codecs and layer checks, metrics (eqs. 4.5–4.7), the GenerationRequest.
The change on the patient's film: film_anatomy (the film's anatomy as masks), findings and finding_region (what
each point stands for and where it may be drawn), edit_region (W), opacity and composite.
"""
