"""Model types served by name that are recipes over the families: `std` (choice, two-phase run,
blend) and its pieces. Importing this package registers nothing; `sgt.ml.registry` lists types.
"""
