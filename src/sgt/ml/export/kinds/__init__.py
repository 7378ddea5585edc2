"""One exporter per predictor kind, each in its own module; `sgt.ml.export.registry` lists them."""
