"""Infrastructure every layer stands on: settings, logs, checkpoints, errors, limits, image I/O (films, their
stored ⇄ display values and the square frame of the model view), lesion points, labelled export, overlays, sharding
and the tiny random test models. Nothing here knows the method."""
