"""`models import PATH [--weights W.h5] --name NAME [--scaling S]`: a model trained elsewhere into the registry
(mnist_core.interop.importer), and `models rescale NAME --scaling S`: an imported model's input scaling changed.
Registered by cli/models.py, whose parser it adds its options to.

Exit codes: 0 imported; 2 bad input, nothing saved (a file that is not a model, damaged, too large, with code
in it (a Lambda layer, a custom object, a class from another module), weights that do not fit the architecture,
an input or output the lab cannot use, a name taken or invalid).
"""

from __future__ import annotations

import json

from mnist_core.display import printable
from mnist_core.errors import LabError

USAGE = "models import PATH [--weights W.h5] --name NAME [--scaling S]"
RESCALE_USAGE = "models rescale NAME --scaling S"


def add_arguments(parser) -> None:
    from mnist_core.interop import importer

    group = parser.add_argument_group("models import", f"{USAGE}: a .keras, a full-model .h5, or an architecture "
                                      f".json with its save_weights .h5; {RESCALE_USAGE}. Exit 0: imported; 2: bad "
                                      "file or request, nothing saved")
    group.add_argument("--weights", dest="import_weights", metavar="W.h5",
                       help="with an architecture .json: the .h5 that model.save_weights() wrote")
    group.add_argument("--scaling", dest="import_scaling", metavar="S",
                       help="the input scaling the model was trained with, instead of the measured best: "
                            + "; ".join(f"{k} = {v}" for k, v in importer.SCALINGS.items()))


def run(args) -> None:
    from mnist_core.interop import importer

    if len(args.names) != 1:
        raise LabError(f"usage: {USAGE}")
    path = args.names[0]
    if not args.name:
        raise LabError(f"models import {printable(path)}: --name NAME is required (the imported model's name)")
    # The files are read and checked as data before TensorFlow loads (import_model loads it after).
    meta = importer.import_model(path, args.name, weights=args.import_weights, scaling=args.import_scaling)
    _report(meta, args.json, "imported")


def run_rescale(args) -> None:
    from mnist_core.interop import importer
    from mnist_core.tf_quiet import import_tensorflow

    if len(args.names) != 1 or not args.import_scaling:
        raise LabError(f"usage: {RESCALE_USAGE}")
    if args.import_scaling not in importer.SCALINGS:
        raise LabError(f"unknown scaling {printable(args.import_scaling[:40])!r}; use one of: "
                       f"{', '.join(importer.SCALINGS)}")
    import_tensorflow()
    _report(importer.rescale(args.names[0], args.import_scaling), args.json, "rescaled")


def _report(meta: dict, as_json: bool, verb: str) -> None:
    details = meta["import"]
    if as_json:
        print(json.dumps({"name": meta["name"], "test": {k: meta["test"][k] for k in ("accuracy", "loss")},
                          "import": details, "provenance": meta["provenance"]}))
        return
    scores = ", ".join(f"{k} {v['accuracy']:.1%}" for k, v in details["scaling_scores"].items())
    chosen = details["scaling"] + (" (your choice)" if details["scaling_overridden"] else " (measured best)")
    print(f"{verb} {printable(meta['name'])}: test accuracy {meta['test']['accuracy']:.4f}; input "
          f"{tuple(details['input_shape'])}, output {details['output']}; scaling {chosen}; validation accuracy "
          f"per scaling: {scores}")
