"""`models export NAME --format keras|onnx|tflite [--out PATH]`: a saved model out of the lab, checked in its own
runtime (mnist_core.interop.export). Registered by cli/models.py, whose parser it adds its options to.

Exit codes: 0 exported and parity met; 2 bad input, nothing written (unknown model or format, an out path of the
wrong suffix, in a missing or unwritable folder, or one that exists without --overwrite); 1 written but the
exported model predicts another digit than the lab's on more than 0.1% of the images (the files stay, for a look).
"""

from __future__ import annotations

import json

from mnist_core.display import printable
from mnist_core.errors import LabError

USAGE = "models export NAME --format keras|onnx|tflite [--out PATH] [--overwrite] [--images N] [--latency-calls N]"
EXIT_PARITY_FAILED = 1


def add_arguments(parser) -> None:
    from mnist_core.interop import export

    group = parser.add_argument_group("models export", f"{USAGE}. Exit 0: written, parity met; 1: written, "
                                      "parity failed; 2: bad input, nothing written")
    group.add_argument("--format", dest="export_format", metavar="FORMAT", help="keras, onnx or tflite")
    group.add_argument("--out", dest="export_out", metavar="PATH",
                       help="the file to write (default: NAME.keras / NAME.onnx / NAME.tflite here); "
                            "PATH.input.json beside it describes the input, parity and latency")
    group.add_argument("--overwrite", action="store_true", help="replace PATH and its JSON if they exist")
    group.add_argument("--images", dest="export_images", metavar="N", type=int, default=export.TEST_IMAGES,
                       help=f"test images in the parity check (1 to {export.TEST_IMAGES:,}; default all)")
    group.add_argument("--latency-calls", dest="export_latency_calls", metavar="N", type=int,
                       default=export.DEFAULT_LATENCY_CALLS,
                       help=f"single-image calls timed in the exported model's runtime (1 to "
                            f"{export.MAX_LATENCY_CALLS:,}; the median is reported)")


def run(args) -> int:
    from mnist_core.interop import export, runtimes
    from mnist_core.tf_quiet import import_tensorflow

    if len(args.names) != 1:
        raise LabError(f"usage: {USAGE}")
    name, fmt = args.names[0], args.export_format
    if not fmt:
        raise LabError(f"models export {printable(name)}: --format is required ({', '.join(export.FORMATS)})")
    suffix = runtimes.SUFFIXES.get(fmt, "")
    out = args.export_out if args.export_out is not None else f"{name}{suffix}"
    options = {"overwrite": args.overwrite, "parity_images": args.export_images,
               "latency_calls": args.export_latency_calls}
    export.check_request(name, fmt, out, **options)  # every input checked before TensorFlow loads
    import_tensorflow()
    result = export.export(name, fmt, out, **options)
    parity, latency = result["parity"], result["latency"]
    if args.json:
        print(json.dumps(result))
    else:
        verdict = "parity ok" if parity["passed"] else f"PARITY FAILED (needs {parity['min_agreement']:.1%})"
        extra = f", {printable(result['metadata_json'])}" if result["metadata_json"] else ""
        print(f"exported {printable(name)} as {fmt}: same digit on {parity['agreement']:.2%} of "
              f"{parity['images']:,} test images ({verdict}), max probability difference "
              f"{parity['max_abs_prob_diff']:.2e}, single-image latency {latency['median_ms']:.3f} ms "
              f"(median of {latency['calls']}, {latency['runtime']}); wrote {printable(result['path'])}, "
              f"{printable(result['input_json'])}{extra}")
    return 0 if parity["passed"] else EXIT_PARITY_FAILED
