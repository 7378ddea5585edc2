"""Networks, weight (de)serialisation and inference: the torch code the API and trainer share."""
