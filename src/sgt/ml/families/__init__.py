"""Model families: one module each (create, train step, predict, save, load) and its `FAMILY`.

`sgt.ml.registry` lists them. A family module (with its own helpers: `gp_posterior`, `mlp_net`,
`forest_trees`) never imports another family, `sgt.ml.types` or the registry.
"""
